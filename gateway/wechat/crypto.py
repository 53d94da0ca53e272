"""WeChat open-data crypto (WECHAT.md sections 3 and 4).

Everything a mini-program hands over through ``wx.getUserInfo`` is untrusted until it decrypts
with the *latest* session_key, unpads strictly, parses as a JSON object and carries our own
appid and the session's openid. Each failure maps to one stable ``OpenDataError.code`` so the
gateway can answer with a typed error without ever echoing secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Final, Literal

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "OpenDataError",
    "OpenDataErrorCode",
    "check_session_signature",
    "decrypt_open_data",
    "encrypt_open_data",
    "raw_data_signature",
    "repair_base64",
    "verify_open_data",
    "verify_signature",
]

OpenDataErrorCode = Literal[
    "INVALID_ENCRYPTED_DATA", "WATERMARK_MISMATCH", "SIGNATURE_MISMATCH", "OPENID_MISMATCH"
]

_BLOCK_BYTES: Final = 16  # AES block, PKCS#7 block, key and IV are all 16 bytes here.


class OpenDataError(Exception):
    """Open data rejected; ``code`` is stable for callers, the message never holds secrets."""

    def __init__(self, code: OpenDataErrorCode, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code: OpenDataErrorCode = code


def repair_base64(value: str) -> bytes:
    """Decode strict base64 after restoring ``+`` that URL/form decoding turned into spaces."""
    try:
        return base64.b64decode(value.replace(" ", "+"), validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII characters in the string
        raise OpenDataError("INVALID_ENCRYPTED_DATA", "not valid base64") from exc


def _decode_block(value: str, what: str) -> bytes:
    raw = repair_base64(value)
    if len(raw) != _BLOCK_BYTES:
        # The official demo's -41001 / -41002: key or iv of the wrong size.
        raise OpenDataError("INVALID_ENCRYPTED_DATA", f"{what} must decode to 16 bytes")
    return raw


def _aes_cbc(key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(iv))


def decrypt_open_data(session_key: str, encrypted_data: str, iv: str) -> dict[str, object]:
    """Decrypt ``encryptedData``; a wrong or stale key fails on padding, never yields garbage."""
    key = _decode_block(session_key, "session_key")
    iv_bytes = _decode_block(iv, "iv")
    ciphertext = repair_base64(encrypted_data)
    if not ciphertext or len(ciphertext) % _BLOCK_BYTES:
        raise OpenDataError("INVALID_ENCRYPTED_DATA", "ciphertext is not whole AES blocks")
    decryptor = _aes_cbc(key, iv_bytes).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK_BYTES * 8).unpadder()
    try:
        plaintext = unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise OpenDataError("INVALID_ENCRYPTED_DATA", "bad padding (wrong key?)") from exc
    try:
        data = json.loads(plaintext.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise OpenDataError("INVALID_ENCRYPTED_DATA", "plaintext is not JSON") from exc
    if not isinstance(data, dict):
        raise OpenDataError("INVALID_ENCRYPTED_DATA", "plaintext is not a JSON object")
    return data


def verify_open_data(data: Mapping[str, object], *, appid: str, openid: str) -> None:
    """Reject data minted for another app (watermark) or another user of this app (openId)."""
    watermark = data.get("watermark")
    if not isinstance(watermark, Mapping) or watermark.get("appid") != appid:
        raise OpenDataError("WATERMARK_MISMATCH", "watermark.appid is not this app")
    if data.get("openId") != openid:
        raise OpenDataError("OPENID_MISMATCH", "openId is not the session's user")


def raw_data_signature(raw_data: str, session_key: str) -> str:
    """``sha1(rawData + session_key)`` in lowercase hex, the key as WeChat's base64 string."""
    # SHA-1 is what WeChat's protocol mandates; we only verify, we choose nothing here.
    digest = hashlib.sha1((raw_data + session_key).encode("utf-8"))  # noqa: S324
    return digest.hexdigest()


def verify_signature(raw_data: str, session_key: str, signature: str) -> None:
    """Check ``rawData`` was signed with this session_key, in constant time."""
    expected = raw_data_signature(raw_data, session_key).encode("ascii")
    # Bytes, not str: compare_digest raises TypeError on non-ASCII str input.
    if not hmac.compare_digest(expected, signature.encode("utf-8")):
        raise OpenDataError("SIGNATURE_MISMATCH", "rawData signature does not match")


def encrypt_open_data(
    session_key: str, payload: Mapping[str, object], iv: bytes | None = None
) -> tuple[str, str]:
    """Encrypt like WeChat does, returning base64 ``(encryptedData, iv)``; for sandbox and tests."""
    key = _decode_block(session_key, "session_key")
    iv_bytes = secrets.token_bytes(_BLOCK_BYTES) if iv is None else iv
    if len(iv_bytes) != _BLOCK_BYTES:
        raise OpenDataError("INVALID_ENCRYPTED_DATA", "iv must be 16 bytes")
    plaintext = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    padder = padding.PKCS7(_BLOCK_BYTES * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = _aes_cbc(key, iv_bytes).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(ciphertext).decode("ascii"), base64.b64encode(iv_bytes).decode("ascii")


def check_session_signature(session_key: str) -> str:
    """``hmac_sha256(key=session_key string bytes, msg="")`` hex, for ``/wxa/checksession``."""
    return hmac.new(session_key.encode("utf-8"), b"", hashlib.sha256).hexdigest()
