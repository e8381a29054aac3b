"""Invitation tokens: signed, carrying only an id and a nonce, stored only as a hash."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._errors import InvalidInvitation, ValidationError

if TYPE_CHECKING:
    import json

    from itsdangerous import Signer, URLSafeSerializer

# itsdangerous, hashlib, hmac and secrets are imported where used: together they cost
# ~15 ms of `import teamaccess`, and a process that only checks permissions never signs.

__all__ = ["TokenSigner", "unencodable_key"]

# One salt per purpose, so a signature made for one use never verifies for another.
SALTS = {"invitation": "teamaccess.invitation.v1"}

SecretKey = str | bytes


def unencodable_key(what: str) -> str:
    """What to say of a key (a str) that does not encode as UTF-8: a lone surrogate, as
    ``os.environ`` makes of a byte that is not UTF-8."""
    return (
        f"{what} is not valid Unicode text (it holds a lone surrogate, as a byte that is "
        "not UTF-8 in an environment variable becomes); set it to ASCII text, e.g. from: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


class TokenSigner:
    """Issue and open tokens for one purpose.

    *secret_key* is one key or a list for rotation: the last key signs, every key
    verifies (itsdangerous' key-rotation scheme), so an old key can be retired once the
    tokens it signed have expired.
    """

    def __init__(self, secret_key: SecretKey | Sequence[SecretKey], purpose: str = "invitation"):
        keys: list[object]
        if isinstance(secret_key, str | bytes):
            keys = [secret_key]
        elif isinstance(secret_key, Sequence):
            keys = list(secret_key)
        else:
            keys = []
        # Checked here: a key of another type would fail only when the first token is signed.
        valid = [k for k in keys if isinstance(k, str | bytes) and k]
        if not keys or len(valid) != len(keys):
            raise ValidationError(
                "secret_key must be a non-empty string (or a list of them, newest last); "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        # itsdangerous wants all-str or all-bytes keys
        try:
            as_bytes = [k.encode() if isinstance(k, str) else k for k in valid]
        except UnicodeEncodeError:
            raise ValidationError(unencodable_key("secret_key")) from None
        self._keys = as_bytes
        self._salt = SALTS[purpose]
        # Made on the first token issued or opened: itsdangerous and hashlib cost a
        # process that only checks permissions more than a millisecond, for nothing.
        self._made: tuple[URLSafeSerializer, Signer] | None = None

    @property
    def _serializer(self) -> URLSafeSerializer:
        return self._kept()[0]

    def _kept(self) -> tuple[URLSafeSerializer, Signer]:
        made = self._made
        if made is None:
            import hashlib

            from itsdangerous import URLSafeSerializer

            # itsdangerous' defaults, HMAC-SHA1 over a SHA-1 derived key, with the SHA-1
            # of hashlib itself and the MAC in one OpenSSL call: its default SHA-1 is a
            # Python function, which hmac cannot hand to OpenSSL, so every MAC ran hmac's
            # Python class.
            signing = {"digest_method": hashlib.sha1, "algorithm": _HmacSha1()}
            serializer = URLSafeSerializer(self._keys, salt=self._salt, signer_kwargs=signing)
            # dumps() and loads() make a new Signer every call (about 2 us); it holds only
            # the keys and the salt, and signs and verifies the same, so one is kept. The
            # serializer has no fallback signers: this one is all loads() would try. Two
            # threads that make them at once make equal ones.
            made = self._made = (serializer, serializer.make_signer())
        return made

    def issue(self, subject_id: str) -> tuple[str, str]:
        """A new token for *subject_id* and its hash. A fresh nonce makes every token unique."""
        import secrets

        from itsdangerous.encoding import base64_encode

        # self._serializer.dumps(...) with the kept signer, and without its try at zlib: a
        # payload this short never came out shorter compressed (the margin was at least 4
        # bytes in 300,000 tries), and setting up a compressor cost more than signing. A
        # payload that is not compressed is read as ever (loads() tells them apart).
        text = _compact_json().encode([subject_id, secrets.token_urlsafe(16)])
        token = self._kept()[1].sign(base64_encode(text.encode())).decode("ascii")
        return token, token_hash(token)

    def open(self, token: object) -> str:
        """The subject id a genuine token names; ``InvalidInvitation`` for anything else."""
        # A genuine token is URL-safe ASCII; anything else (a lone surrogate from a broken
        # decode would raise UnicodeEncodeError in itsdangerous) is simply not one.
        if not isinstance(token, str) or not token or len(token) > 1000 or not token.isascii():
            raise InvalidInvitation("this is not an invitation link; copy the whole link")
        from itsdangerous.exc import BadData  # the module: no importlib call for a package

        try:
            # self._serializer.loads(token), with the kept signer
            serializer, signer = self._kept()
            payload = serializer.load_payload(signer.unsign(token.encode("ascii")))
        except BadData:
            # "from None": itsdangerous' message quotes the signature, and a chained cause
            # would put that part of the token into every logged traceback.
            raise InvalidInvitation(
                "this invitation link is invalid or was altered; copy the whole link from "
                "the mail, or ask for a new invitation"
            ) from None
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not all(isinstance(p, str) for p in payload)
        ):
            raise InvalidInvitation("this invitation link is invalid; ask for a new invitation")
        return str(payload[0])


class _HmacSha1:
    """itsdangerous' ``HMACAlgorithm()`` (HMAC with SHA-1), computed by ``hmac.digest()``."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        import hmac

        return hmac.digest(key, value, "sha1")

    def verify_signature(self, key: bytes, value: bytes, sig: bytes) -> bool:
        import hmac

        return hmac.compare_digest(sig, hmac.digest(key, value, "sha1"))


@functools.cache
def _compact_json() -> json.JSONEncoder:
    """The serializer's JSON (itsdangerous' compact form), one kept encoder; json loads
    with the first token, not with teamaccess."""
    import json

    return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def token_hash(token: str) -> str:
    """SHA-256 of the token: it holds a random nonce, so no salt or stretching is needed."""
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def hash_matches(token: str, stored: str | None) -> bool:
    import hmac

    return stored is not None and hmac.compare_digest(token_hash(token), stored)
