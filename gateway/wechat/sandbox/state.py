"""In-memory state of one WeChat emulator: apps, made-up users, codes, keys and tokens.

Kept on the Starlette app (never in module globals) so several emulators can share a process.
Nothing here awaits, so each operation is atomic under asyncio.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

CODE_TTL: Final = 300.0  # wx.login and OAuth codes: 5 minutes
QR_CODE_TTL: Final = 600.0  # website QR login codes: 10 minutes
TOKEN_TTL: Final = 7200  # user and app access tokens
REFRESH_TTL: Final = 30 * 86400.0  # OAuth refresh tokens: 30 days

KINDS: Final = frozenset({"miniprogram", "official_account", "website", "mobile_app"})
USERINFO_SCOPES: Final = frozenset({"snsapi_userinfo", "snsapi_login"})
DEFAULT_SCOPE: Final = {
    "miniprogram": "",
    "official_account": "snsapi_base",
    "website": "snsapi_login",
    "mobile_app": "snsapi_userinfo",
}


@dataclass(frozen=True)
class SandboxApp:
    """One emulated app; apps sharing ``platform`` share unionids, ``None`` never gets one."""

    appid: str
    secret: str
    kind: str  # "miniprogram" | "official_account" | "website" | "mobile_app"
    platform: str | None


class WeChatError(Exception):
    """A WeChat failure, answered as HTTP 200 ``{"errcode", "errmsg"}`` like WeChat does."""

    def __init__(self, errcode: int) -> None:
        super().__init__(errcode)
        self.errcode = errcode


@dataclass
class Code:
    """A one-time code (login, OAuth or phone) with optional injected failures."""

    value: str
    appid: str
    user: str
    expires_at: float
    scope: str = ""
    snapshot: bool = False
    phone: tuple[str, str] | None = None  # (purePhoneNumber, countryCode) for phone codes
    errcode: int | None = None
    fail_times: int | None = None  # None with an errcode: fail on every exchange
    used: bool = False


@dataclass(frozen=True)
class Grant:
    """What a user's OAuth consent gave an app: the identity and scope behind its tokens."""

    appid: str
    user: str
    openid: str
    unionid: str | None
    scope: str
    snapshot: bool


@dataclass(frozen=True)
class UserToken:
    """An OAuth access or refresh token: a grant until ``expires_at``."""

    grant: Grant
    expires_at: float


@dataclass
class AppToken:
    """An app's own access token (``/cgi-bin/stable_token``)."""

    appid: str
    value: str
    expires_at: float


def _digest_id(prefix: str, key: str, message: str) -> str:
    """28-character id like real openids: deterministic, yet unlinkable across keys."""
    mac = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return prefix + base64.urlsafe_b64encode(mac).decode("ascii")[:27]


@dataclass
class SandboxState:
    """Everything one emulator remembers; ``now()`` is its clock, advanceable in tests."""

    apps: dict[str, SandboxApp]
    latency: float = 0.0
    # share of WeChat calls answered ``-1`` (system busy) before anything happens: a bad
    # minute of WeChat for the soak (``POST /sandbox/weather``)
    failure_rate: float = 0.0
    clock: Callable[[], float] = time.time
    offset: float = 0.0
    codes: dict[str, Code] = field(default_factory=dict)
    phone_codes: dict[str, Code] = field(default_factory=dict)
    session_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    user_tokens: dict[str, UserToken] = field(default_factory=dict)
    refresh_tokens: dict[str, UserToken] = field(default_factory=dict)
    app_tokens: dict[str, AppToken] = field(default_factory=dict)
    current_app_token: dict[str, str] = field(default_factory=dict)
    users_by_openid: dict[str, tuple[str, str]] = field(default_factory=dict)
    users_by_unionid: dict[str, tuple[str, str]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    @classmethod
    def build(
        cls, apps: Sequence[SandboxApp], latency: float, clock: Callable[[], float]
    ) -> SandboxState:
        """Validate the app list once, so a typo fails at start-up, not mid-test."""
        by_id: dict[str, SandboxApp] = {}
        for app in apps:
            if app.kind not in KINDS:
                raise ValueError(f"unknown app kind {app.kind!r} for {app.appid}")
            if app.appid in by_id:
                raise ValueError(f"duplicate appid {app.appid}")
            by_id[app.appid] = app
        return cls(apps=by_id, latency=latency, clock=clock)

    def now(self) -> float:
        return self.clock() + self.offset

    # -- identities -------------------------------------------------------------------------

    def openid(self, appid: str, user: str, *, snapshot: bool = False) -> str:
        """Per-app id; snapshot users get a fake one that never matches the real user's."""
        message = f"snapshot\x00{user}" if snapshot else user
        value = _digest_id("o", appid, message)
        self.users_by_openid[value] = (appid, user)
        return value

    def unionid(self, appid: str, user: str, *, snapshot: bool = False) -> str | None:
        """Per-platform id shared by the platform's apps; ``None`` without a platform."""
        platform = self.apps[appid].platform
        if platform is None:
            return None
        message = f"snapshot\x00{user}" if snapshot else user
        value = _digest_id("u", "platform:" + platform, message)
        self.users_by_unionid[value] = (platform, user)
        return value

    # -- codes ------------------------------------------------------------------------------

    def mint_code(self, code: Code, *, phone: bool = False) -> None:
        (self.phone_codes if phone else self.codes)[code.value] = code

    def code_ttl(self, appid: str) -> float:
        return QR_CODE_TTL if self.apps[appid].kind == "website" else CODE_TTL

    def redeem(
        self, table: dict[str, Code], appid: str, value: str, *, expired: int, reused: int = 40163
    ) -> Code:
        """Use a code once; the order of checks decides which errcode a client sees."""
        if not value:
            raise WeChatError(41008)
        code = table.get(value)
        if code is None or code.appid != appid:
            raise WeChatError(40029)
        if code.used:
            raise WeChatError(reused)
        if self.now() >= code.expires_at:
            raise WeChatError(expired)
        if code.errcode is not None and (code.fail_times is None or code.fail_times > 0):
            if code.fail_times is not None:
                code.fail_times -= 1
            raise WeChatError(code.errcode)
        code.used = True
        return code

    # -- apps and secrets -------------------------------------------------------------------

    def authenticate(self, appid: str, secret: str, kinds: frozenset[str]) -> SandboxApp:
        """40013 for an unknown appid or one of the wrong kind, 40125 for a wrong secret."""
        app = self.apps.get(appid)
        if app is None or app.kind not in kinds:
            raise WeChatError(40013)
        if not hmac.compare_digest(app.secret.encode("utf-8"), secret.encode("utf-8")):
            raise WeChatError(40125)
        return app

    # -- session keys and tokens ------------------------------------------------------------

    def rotate_session_key(self, appid: str, openid: str) -> str:
        """A fresh key at each login; only the latest one decrypts or passes checksession."""
        key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        self.session_keys[(appid, openid)] = key
        return key

    def issue_user_tokens(self, grant: Grant) -> tuple[str, str]:
        """A new ``(access_token, refresh_token)`` pair for a code exchange."""
        refresh = secrets.token_urlsafe(48)
        self.refresh_tokens[refresh] = UserToken(grant, self.now() + REFRESH_TTL)
        return self.issue_access_token(grant), refresh

    def issue_access_token(self, grant: Grant) -> str:
        value = secrets.token_urlsafe(64)
        self.user_tokens[value] = UserToken(grant, self.now() + TOKEN_TTL)
        return value

    def app_token(self, appid: str, *, force_refresh: bool) -> AppToken:
        """Same token while valid; ``force_refresh`` kills the old one at once."""
        current = self.app_tokens.get(self.current_app_token.get(appid, ""))
        if current is not None and not force_refresh and self.now() < current.expires_at:
            return current
        if current is not None:
            del self.app_tokens[current.value]
        fresh = AppToken(appid, secrets.token_urlsafe(96), self.now() + TOKEN_TTL)
        self.app_tokens[fresh.value] = fresh
        self.current_app_token[appid] = fresh.value
        return fresh

    def resolve_app_token(self, value: str) -> AppToken:
        """41001 missing, 40001 unknown or replaced, 42001 expired."""
        if not value:
            raise WeChatError(41001)
        token = self.app_tokens.get(value)
        if token is None:
            raise WeChatError(40001)
        if self.now() >= token.expires_at:
            raise WeChatError(42001)
        return token
