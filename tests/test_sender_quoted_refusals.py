"""A quoted ASCII sender name too long for one line that cannot be folded inside its
quotes (a tab or another control character in it, a word too long for a line) is
refused when ``TeamAccess`` is made with a message saying what to change, not the
generic "does not survive the trip through a mail header". Every name accepted is
written so that the last check passes every mail and the name reads back as given.
"""

from __future__ import annotations

from email.headerregistry import Address

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET
from tests.test_sender_quoted import ADDRESS, read_back

from teamaccess import MemoryMailer, MemoryStore, TeamAccess, ValidationError

LONG = "Billing and Invoicing Department of Example Hosting GmbH, North Region"


def sender_of(name: str) -> str:
    return str(Address(display_name=name, addr_spec=ADDRESS))


def make(sender: str) -> TeamAccess:
    return TeamAccess(MemoryStore(), MemoryMailer(), secret_key=SECRET, sender=sender)


class TestRefusals:
    """Each reason has its own message, naming what to change."""

    # Names the stdlib's folder writes so that the last check refuses them (a tab near
    # where the line is full); others with a tab it writes well, and they are taken.
    @pytest.mark.parametrize("name", [f"Shop, {'ab ' * 23}\tx", f"Shop, {'ab ' * 30}\t"])
    def test_a_tab_in_a_long_quoted_name(self, name: str) -> None:
        with pytest.raises(ValidationError, match=r"holds a tab.*replace it with a space"):
            make(sender_of(name))

    def test_another_control_character(self) -> None:
        with pytest.raises(ValidationError, match=r"control character '\\x01'"):
            make(sender_of(f"Shop, {'ab ' * 23}\x01x"))

    @pytest.mark.parametrize(
        ("name", "length"),
        [(f"Shop, {'x' * 77}", 77), (f"{'x' * 75}, Shop {LONG}", 76), (f"{LONG} {'y' * 90}", 90)],
    )
    def test_a_word_too_long_for_a_line(self, name: str, length: int) -> None:
        with pytest.raises(
            ValidationError,
            match=rf"is {length} characters long.*put a space in it or shorten it to at most 70",
        ):
            make(sender_of(name))

    def test_a_short_name_with_a_tab_is_written_on_one_line_as_before(self) -> None:
        make(sender_of("Shop,\tSupport"))


_WORD = st.one_of(
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
    st.sampled_from(["Shop,", "GmbH", "\t", "a\tb", "x" * 66, "y" * 70, "z" * 71, "w" * 77]),
    st.integers(60, 90).map(lambda n: "v" * n),
)
# Without encoded-word syntax ("=?" ... "?="), which the service refuses in any sender
# for its own reason.
NAMES = (
    st.lists(_WORD, min_size=1, max_size=14)
    .map(lambda words: "Shop, " + " ".join(words))
    .filter(lambda name: "=?" not in name)
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(NAMES)
@example(f"Shop, {'x' * 70}")
@example(f"{LONG} \t")
@example(f"Shop, {LONG} {'x' * 70} {'y' * 70}")
def test_every_quoted_name_is_written_or_refused_with_its_reason(name: str) -> None:
    sender = sender_of(name)
    try:
        make(sender)
    except ValidationError as exc:
        text = str(exc)
        assert "does not survive" not in text, text
        words = name.split(" ")
        assert ("\t" in name and "tab" in text) or (
            max(map(len, words)) > 70 and "characters long" in text
        ), text
        return
    address = read_back(sender)
    assert (address.display_name, address.addr_spec) == (name, ADDRESS)
