"""OWASP's device cookies: a client that logged in with a password is given a signed token bound
to that username; presented again, its attempts count on its own throttle key only, so failures
from elsewhere (a stranger guessing the password) never hold it.

The token is ``<nonce>.<HMAC-SHA256(key, username NUL nonce)>``: not a secret of the account, and
worthless for another username. The API carries it as an HttpOnly cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "gw_device"
MAX_AGE = 365 * 24 * 3600


class DeviceCookies:
    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(secret_key.encode(), b"gateway device cookies", "sha256").digest()

    def issue(self, username: str) -> str:
        nonce = secrets.token_urlsafe(12)
        return f"{nonce}.{self._sign(username, nonce)}"

    def device(self, token: str | None, username: str) -> str | None:
        """The device's id when ``token`` was issued for ``username``, else None."""
        nonce, _, signature = (token or "").partition(".")
        if not nonce or len(token or "") > 128:
            return None
        return nonce if hmac.compare_digest(signature, self._sign(username, nonce)) else None

    def _sign(self, username: str, nonce: str) -> str:
        mac = hmac.new(self._key, f"{username}\0{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")
