"""Browser-side OAuth for official accounts and websites: authorization URLs and ``state``.

The gateway makes the ``state``: an expiry, a nonce and an HMAC over both and the app's appid,
so a state made for one app, forged, or older than ten minutes (a website QR code's lifetime)
is refused. It stays well under WeChat's 128-byte limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from gateway.config import AppConfig, AppKind
from gateway.errors import InvalidInput, InvalidState, UnsupportedAppKind, declares

STATE_SECONDS = 600
_SCOPES = {
    AppKind.OFFICIAL_ACCOUNT: ({"snsapi_base", "snsapi_userinfo"}, "/connect/oauth2/authorize"),
    AppKind.WEBSITE: ({"snsapi_login"}, "/connect/qrconnect"),
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class OAuthStates:
    def __init__(self, secret_key: str, clock: Callable[[], float] = time.time) -> None:
        self._key = hashlib.sha256(b"gateway/oauth-state\x00" + secret_key.encode()).digest()
        self._clock = clock

    def _mac(self, appid: str, expires: str, nonce: str) -> str:
        digest = hmac.new(self._key, f"{appid}|{expires}|{nonce}".encode(), hashlib.sha256)
        return _b64(digest.digest()[:18])

    def issue(self, app: AppConfig) -> tuple[str, datetime]:
        expires = int(self._clock()) + STATE_SECONDS
        nonce = _b64(secrets.token_bytes(9))
        state = f"{expires:x}.{nonce}.{self._mac(app.appid, f'{expires:x}', nonce)}"
        return state, datetime.fromtimestamp(expires, UTC)

    @declares(InvalidState)
    def verify(self, app: AppConfig, state: str | None) -> None:
        parts = (state or "").split(".")
        if len(parts) != 3:
            raise InvalidState(
                "state is missing or malformed: use the state from authorizationUrl."
            )
        expires, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac(app.appid, expires, nonce)):
            raise InvalidState("state was not issued for this app.")
        if int(expires, 16) < self._clock():
            raise InvalidState("state has expired: start the login again.")


@declares(UnsupportedAppKind, InvalidInput)
def authorization_url(
    open_base: str, app: AppConfig, redirect_uri: str, scope: str | None, state: str
) -> str:
    """The URL to send the browser to; WeChat checks the redirect domain against the app."""
    allowed = _SCOPES.get(app.kind)
    if allowed is None:
        raise UnsupportedAppKind(
            "App %(app)s (%(kind)s) has no browser authorization page.",
            app=repr(app.key),
            kind=app.kind.value,
        )
    scopes, path = allowed
    scope = scope or sorted(scopes)[0]
    if scope not in scopes:
        raise InvalidInput(
            "scope", "scope must be one of %(scopes)s.", scopes=", ".join(sorted(scopes))
        )
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or len(redirect_uri) > 1024:
        raise InvalidInput("redirectUri", "redirectUri must be an absolute http(s) URL.")
    query = urlencode(
        {
            "appid": app.appid,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": state,
        }
    )
    return f"{open_base.rstrip('/')}{path}?{query}#wechat_redirect"
