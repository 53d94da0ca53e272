"""Sealing secrets at rest (WeChat session_keys) with AES-256-GCM.

The key is derived from ``GATEWAY_SECRET_KEY`` with HKDF, and every ciphertext is bound to the
row it belongs to (associated data), so a sealed value copied onto another row fails to open.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"


class SealError(Exception):
    """The value was sealed under another key or for another row."""


class SecretBox:
    def __init__(self, secret_key: str, purpose: bytes = b"gateway/wechat-session-key") -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(derived)

    def seal(self, plaintext: str, bound_to: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, bound_to: str) -> str:
        version, _, body = sealed.partition(".")
        if version != _VERSION:
            raise SealError("unknown seal version")
        raw = base64.urlsafe_b64decode(body)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
        except InvalidTag:
            raise SealError("cannot open sealed value") from None


def generate_secret_key() -> str:
    return secrets.token_urlsafe(32)
