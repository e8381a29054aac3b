"""Properties of address normalisation: idempotent, case-insensitive, IDN either form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests import strategies as ts

from teamaccess import InvalidEmail, ValidationError, normalize_email


class TestNormalizeEmail:
    """normalize_email() gives a display form and a comparison key."""

    @given(ts.emails)
    def test_idempotent(self, address: str) -> None:
        once = normalize_email(address)
        assert normalize_email(once.email) == once
        assert normalize_email(once.key).key == once.key

    @given(ts.emails)
    def test_key_is_case_insensitive(self, address: str) -> None:
        key = normalize_email(address).key
        assert normalize_email(address.upper()).key == key
        assert normalize_email(address.lower()).key == key
        assert normalize_email(address.swapcase()).key == key
        assert key == key.lower()

    @given(ts.emails, st.sampled_from([" ", "  ", "\t"]))
    def test_surrounding_space_is_ignored(self, address: str, space: str) -> None:
        assert normalize_email(space + address + space) == normalize_email(address)

    @given(ts.idn_emails())
    def test_idn_in_either_form_is_one_key(self, forms: tuple[str, str]) -> None:
        unicode_form, punycode_form = forms
        a, b = normalize_email(unicode_form), normalize_email(punycode_form)
        assert a.key == b.key
        assert a.key.isascii() or "@" in a.key
        assert a.key.rpartition("@")[2].startswith("xn--")
        assert normalize_email(unicode_form.upper()).key == a.key

    @given(ts.emails, st.sampled_from(["\r", "\n", "\0", "\r\n"]), st.data())
    def test_line_breaks_and_nul_are_rejected(
        self, address: str, bad: str, data: st.DataObject
    ) -> None:
        at = data.draw(st.integers(0, len(address)))
        with pytest.raises(ValidationError, match=r"line break or NUL"):
            normalize_email(address[:at] + bad + address[at:])

    @given(st.text(alphabet="abc.-", max_size=20))
    def test_no_at_sign_is_invalid(self, text: str) -> None:
        with pytest.raises(InvalidEmail, match=r"not a valid email address"):
            normalize_email(text)

    def test_non_string(self) -> None:
        with pytest.raises(ValidationError, match=r"must be a string"):
            normalize_email(None)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("chef@müller.de", "chef@xn--mller-kva.de"),
            ("Chef@MÜLLER.de", "chef@müller.de"),
            ("Dev@Agentur.DE", "dev@agentur.de"),
        ],
    )
    def test_examples(self, a: str, b: str) -> None:
        assert normalize_email(a).key == normalize_email(b).key

    def test_display_form_keeps_the_local_part(self) -> None:
        assert normalize_email("Chef@MÜLLER.de").email == "Chef@müller.de"
