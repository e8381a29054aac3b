"""``TokenSigner`` signs and verifies with one kept signer: held to the serializer's own
``dumps()`` and ``loads()``, which make a new signer per call, on real and altered tokens."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadData

from teamaccess import InvalidInvitation
from teamaccess._tokens import TokenSigner

KEYS = ["k" * 32, "n" * 32]


def _loads(signer: TokenSigner, token: str) -> Any:
    """What the serializer itself reads from *token*, or the error it raises."""
    try:
        return signer._serializer.loads(token)
    except BadData:
        return BadData


def _opened(signer: TokenSigner, token: str) -> Any:
    try:
        return signer.open(token)
    except InvalidInvitation:
        return InvalidInvitation


class TestKeptSigner:
    def test_issued_tokens_are_the_serializers(self) -> None:
        signer = TokenSigner(KEYS)
        token, digest = signer.issue("inv_abc")
        subject, nonce = signer._serializer.loads(token)
        assert subject == "inv_abc"
        # the same payload signed by dumps() is the same token, byte for byte
        assert signer._serializer.dumps([subject, nonce]) == token
        assert signer.open(token) == "inv_abc"
        assert len(digest) == 64

    def test_rotation(self) -> None:
        old = TokenSigner(KEYS[0])
        rotated = TokenSigner(KEYS)
        assert rotated.open(old.issue("inv_old")[0]) == "inv_old"
        with pytest.raises(InvalidInvitation):
            old.open(rotated.issue("inv_new")[0])
        with pytest.raises(InvalidInvitation):
            TokenSigner("x" * 32).open(rotated.issue("inv_new")[0])

    def test_another_purpose_never_verifies(self) -> None:
        signer = TokenSigner(KEYS)
        token = signer.issue("inv_1")[0]
        other = TokenSigner(KEYS)
        other._serializer.salt = b"another.purpose"
        with pytest.raises(BadData):
            other._serializer.loads(token)

    @settings(max_examples=400)
    @given(
        st.data(),
        st.lists(st.text(alphabet="abcxyzAZ09._-=", min_size=1, max_size=3), max_size=4),
    )
    def test_altered_tokens_as_loads(self, data: st.DataObject, inserts: list[str]) -> None:
        signer = TokenSigner(KEYS)
        token = signer.issue(data.draw(st.text(max_size=12)))[0]
        altered = token
        for piece in inserts:
            at = data.draw(st.integers(0, len(altered)))
            cut = data.draw(st.integers(0, 2))
            altered = altered[:at] + piece + altered[at + cut :]
        expected = _loads(signer, altered)
        got = _opened(signer, altered)
        if expected is BadData:
            assert got is InvalidInvitation
        elif isinstance(expected, list) and len(expected) == 2:
            assert got == str(expected[0])
        else:
            assert got is InvalidInvitation

    @given(st.lists(st.text(max_size=10), max_size=3) | st.text(max_size=10) | st.integers())
    def test_payloads_of_other_shapes_are_refused(self, payload: Any) -> None:
        signer = TokenSigner(KEYS)
        token = signer._serializer.dumps(payload)
        if isinstance(payload, list) and len(payload) == 2:
            assert signer.open(token) == payload[0]
        else:
            with pytest.raises(InvalidInvitation):
                signer.open(token)
