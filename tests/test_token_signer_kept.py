"""``TokenSigner`` signs and verifies with one kept signer: held to the serializer's own
``dumps()`` and ``loads()``, which make a new signer per call, on real and altered tokens."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadData, URLSafeSerializer

from teamaccess import InvalidInvitation
from teamaccess._tokens import SALTS, TokenSigner

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


def _plain(keys: list[str]) -> URLSafeSerializer:
    """The serializer as itsdangerous makes it by default, for the same keys and salt."""
    return URLSafeSerializer([k.encode() for k in keys], salt=SALTS["invitation"])


class TestAsItsdangerousDefault:
    """HMAC-SHA1 through hashlib and hmac.digest(), and no try at compressing: the tokens
    are the default serializer's, and it reads them."""

    @settings(max_examples=200)
    @given(st.text(max_size=40), st.sampled_from([KEYS, KEYS[:1], ["é" * 8]]))
    def test_issued_tokens_read_by_the_default_serializer(
        self, subject: str, keys: list[str]
    ) -> None:
        token = TokenSigner(keys).issue(subject)[0]
        plain = _plain(keys)
        payload = plain.loads(token)
        assert payload[0] == subject
        compressed = plain.dumps(payload)
        if not compressed.startswith("."):  # the default serializer did not compress
            assert compressed == token

    @settings(max_examples=200)
    @given(st.lists(st.text(max_size=30), min_size=2, max_size=2), st.booleans())
    def test_default_tokens_open(self, payload: list[str], long: bool) -> None:
        if long:  # compressible, so the default serializer compresses it
            payload = [payload[0], payload[1] + "a" * 200]
        token = _plain(KEYS).dumps(payload)
        assert TokenSigner(KEYS).open(token) == payload[0]
        assert TokenSigner(list(reversed(KEYS))).open(token) == payload[0]

    def test_the_mac_is_hmac_sha1(self) -> None:
        from teamaccess._tokens import _HmacSha1

        key, value = b"k" * 20, b"value"
        mac = hmac.new(key, value, hashlib.sha1).digest()
        assert _HmacSha1().get_signature(key, value) == mac
        assert _HmacSha1().verify_signature(key, value, mac)
        assert not _HmacSha1().verify_signature(key, value, mac[:-1] + bytes([mac[-1] ^ 1]))
        assert not _HmacSha1().verify_signature(key, value + b"x", mac)


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
