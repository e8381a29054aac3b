"""Properties of address normalisation: idempotent, case-insensitive, IDN either form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
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


def _full(value: str) -> object:
    """What the full check (email-validator, then the header check) makes of *value*."""
    from teamaccess._emails import _validate_fully

    try:
        return _validate_fully(value, False)
    except InvalidEmail:
        return "refused"


# Near-misses of the plain form: dots and hyphens in every place, digits, case, long runs.
_NEAR = st.text(alphabet="aZ09_+-..@", min_size=1, max_size=30)
_LABEL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,70}", fullmatch=True)
_DOMAINS = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_LOCALS = st.from_regex(r"[A-Za-z0-9_+.-]{1,70}", fullmatch=True)
_TLDS = st.sampled_from(["de", "COM", "x-y", "c1", "test", "Local", "onion", "arpa", "museum"])


def _shortcut_pattern() -> str:
    """The shortcut's own regular expression: whatever it matches, generated directly."""
    from teamaccess._emails import _PLAIN, _plain

    _plain("a@b.de")  # compiles it
    return _PLAIN[0].pattern


class TestPlainAddressShortcut:
    """The shortcut for plain ASCII addresses says what the full check says, or defers."""

    @settings(max_examples=500)
    @given(st.from_regex(_shortcut_pattern(), fullmatch=True))
    def test_whatever_its_pattern_matches(self, value: str) -> None:
        from teamaccess._emails import _plain

        shortcut = _plain(value)
        if shortcut is not None:
            assert _full(value) == shortcut

    @given(st.one_of(
        _NEAR,
        st.builds(lambda lo, d, t: f"{lo}@{d}.{t}", _LOCALS, _DOMAINS, _TLDS),
        st.builds(lambda lo, d: f"{lo}@{d}", _LOCALS, _DOMAINS),
    ))  # fmt: skip
    def test_same_as_the_full_check(self, value: str) -> None:
        from teamaccess._emails import _plain

        shortcut = _plain(value)
        if shortcut is not None:
            assert _full(value) == shortcut

    @pytest.mark.parametrize(
        "value",
        ["User.Name+tag@Sub.Example.COM", "a@1b.de", "-a-@b.co", "a_b@x.x-y", "a@b.museum"],
    )
    def test_common_addresses_take_it(self, value: str) -> None:
        from teamaccess._emails import _plain

        assert _plain(value) is not None
        assert _plain(value) == _full(value)

    @pytest.mark.parametrize(
        "value",
        ["a@b.c1", "a@b-.com", "a@ab--cd.com", "a@xn--mller-kva.de", "a@b.test",
         "a@localhost", "a..b@c.de", ".a@c.de", "a@c", "a" * 65 + "@b.de", "a@b.local",
         "chef@müller.de", "a=?x?=@b.de", "\"a b\"@c.de"],
    )  # fmt: skip
    def test_the_rest_goes_to_the_full_check(self, value: str) -> None:
        from teamaccess._emails import _plain

        assert _plain(value) is None

    def test_special_use_domains_match_email_validator(self) -> None:
        import email_validator

        from teamaccess._emails import _SPECIAL_USE

        assert sorted(_SPECIAL_USE) == sorted(email_validator.SPECIAL_USE_DOMAIN_NAMES)


#: Names a vendor adds to email-validator's list of special-use domains: its internal
#: zones, one label or several, and names that are the start or end of others.
_VENDOR_NAMES = ["intern", "corp.example", "example.com", "b.de", "mail"]
_VENDOR_DOMAINS = st.sampled_from(
    ["corp.example", "x.corp.example", "xcorp.example", "corp.example.de", "example.com",
     "mail.example.com", "b.de", "ab.de", "b.de.x", "host.intern", "intern.de", "mail.de",
     "a.mail", "CORP.Example", "B.DE", "x.Intern", "shop.de", "a.test", "a.local"]
)  # fmt: skip


def _normalized(value: str) -> object:
    """What normalize_email() (the shortcut first, the full check behind it) makes of it."""
    try:
        return normalize_email(value)
    except InvalidEmail:
        return "refused"


class TestVendorSpecialUseDomains:
    """Names a vendor adds to ``email_validator.SPECIAL_USE_DOMAIN_NAMES`` (the list the
    full check consults) are refused by the shortcut too, and a change to the list is
    seen at once, not answered from the address cache."""

    @pytest.fixture(params=["replaced", "appended"])
    def vendor_list(
        self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[None]:
        import email_validator

        names = email_validator.SPECIAL_USE_DOMAIN_NAMES
        if request.param == "replaced":
            monkeypatch.setattr(
                email_validator, "SPECIAL_USE_DOMAIN_NAMES", [*names, *_VENDOR_NAMES]
            )
            yield
            return
        # changed in place, as its documentation shows
        names.extend(_VENDOR_NAMES)
        try:
            yield
        finally:
            del names[-len(_VENDOR_NAMES) :]

    # The list stays as the fixture set it for every example.
    @settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(local=st.sampled_from(["a", "Chef.Name", "x+y"]), domain=_VENDOR_DOMAINS)
    def test_both_paths_refuse_the_same(self, vendor_list: None, local: str, domain: str) -> None:
        from teamaccess._emails import _plain

        value = f"{local}@{domain}"
        full = _full(value)
        assert _normalized(value) == full
        shortcut = _plain(value)
        if shortcut is not None:
            assert shortcut == full

    @pytest.mark.parametrize("value", ["a@corp.example", "a@x.corp.example", "a@host.intern",
                                       "a@example.com", "a@CORP.example"])  # fmt: skip
    def test_refused(self, vendor_list: None, value: str) -> None:
        with pytest.raises(InvalidEmail, match="special-use or reserved"):
            normalize_email(value)

    def test_a_change_after_an_address_was_cached(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import email_validator

        from teamaccess._emails import _plain

        assert normalize_email("kunde@corp.example").email == "kunde@corp.example"
        names = email_validator.SPECIAL_USE_DOMAIN_NAMES
        monkeypatch.setattr(email_validator, "SPECIAL_USE_DOMAIN_NAMES", names)
        names.append("corp.example")
        try:
            assert _plain("kunde@corp.example") is None
            with pytest.raises(InvalidEmail, match="special-use"):
                normalize_email("kunde@corp.example")
        finally:
            names.remove("corp.example")
        assert normalize_email("kunde@corp.example").email == "kunde@corp.example"

    def test_a_name_dropped_from_the_list_is_accepted_by_both(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import email_validator

        names = [n for n in email_validator.SPECIAL_USE_DOMAIN_NAMES if n != "local"]
        monkeypatch.setattr(email_validator, "SPECIAL_USE_DOMAIN_NAMES", names)
        assert _normalized("a@host.local") == _full("a@host.local") != "refused"

    def test_a_list_that_is_no_list_of_names_leaves_every_address_to_the_full_check(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import email_validator

        from teamaccess._emails import _plain

        monkeypatch.setattr(email_validator, "SPECIAL_USE_DOMAIN_NAMES", ("test", 5))
        assert _plain("a@shop.de") is None
