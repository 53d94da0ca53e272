"""Expected failures of the use cases: one exception class per stable, machine-readable code.

Use cases raise these and declare, with :func:`declares`, which ones each entry point may
raise; the API binds every class to a GraphQL union member and builds each field's union from
those declarations, so an error a use case adds cannot be forgotten at the edge. Anything else
that escapes is unexpected and is masked there.

Exception tree::

    GatewayError                 every expected failure: ``code``, ``message``
    ├── input        InvalidInput (``field``), InvalidState, UnknownApp, UnsupportedAppKind
    ├── WeChat       InvalidCode, CodeUsed, RiskBlocked, RateLimited, AppMisconfigured,
    │                UpstreamUnavailable, UpstreamError   (``errcode``/``retryable`` when
    │                WeChat's answer is the cause; see gateway.wechat.errors)
    ├── open data    InvalidEncryptedData, WatermarkMismatch, OpenidMismatch,
    │                SignatureMismatch, SessionExpired, NoUnionid, SnapshotUser
    ├── login state  NotLoggedIn, InvalidRefreshToken, RefreshTokenReused, AccountDisabled,
    │                ReauthenticationRequired
    ├── credentials  InvalidCredentials, WeakPassword, UsernameTaken, CredentialExists,
    │                NoPassword, Throttled, TemporarilyUnavailable
    ├── graph        IdentityConflict, PhoneConflict, NotFound, LastIdentity, NotEntitled
    ├── profile      ContentRejected (WeChat's msg_sec_check), ImageTooLarge, InvalidImage
    ├── web login    WebLoginExpired, WebLoginPending, WebLoginDenied, WebLoginNotBound
    └── cost         TooExpensive (a second expensive field in one request)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ErrorSpec = type["GatewayError"] | tuple[type["GatewayError"], ...] | Callable[..., Any]

_BY_CODE: dict[str, type[GatewayError]] = {}


class GatewayError(Exception):
    """An expected failure with a stable ``code`` and a message a person can act on."""

    code: ClassVar[str] = ""
    default_message: ClassVar[str] = ""
    field: str | None = None
    retry_after: float | None = None
    # set when an upstream (WeChat) answer caused this error
    errcode: int | None = None
    retryable: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code:
            if cls.code in _BY_CODE:
                raise TypeError(f"two error classes for code {cls.code}")
            _BY_CODE[cls.code] = cls

    def __init__(self, message: str | None = None, **params: object) -> None:
        """``message``: English, and the id of its translations in the ``errors`` catalogue
        (gateway.i18n), so a literal, never an f-string: what varies goes in ``params``,
        named by ``%(name)s`` placeholders. ``message`` is the English text with them filled
        in; the API answers it in the request's language (gateway.api.errors)."""
        self.template = message or self.default_message
        self.params = params
        self.message = self.template % params if params else self.template
        super().__init__(self.message)


def N_(message: str) -> str:
    """Marks ``message`` as an id of the ``errors`` catalogue where it is not written straight
    into an error's call (a constant, a table): scripts/i18n_check.py finds it. Answers it
    unchanged, as gettext's ``gettext_noop``."""
    return message


def error_class(code: str) -> type[GatewayError]:
    """The class of a code (for errors that travelled as data, e.g. through Redis)."""
    return _BY_CODE[code]


def all_error_classes() -> tuple[type[GatewayError], ...]:
    return tuple(_BY_CODE.values())


class _WithField(GatewayError):
    default_field: ClassVar[str | None] = None

    def __init__(
        self, message: str | None = None, *, field: str | None = None, **params: object
    ) -> None:
        super().__init__(message, **params)
        self.field = field or self.default_field


class _WithRetry(GatewayError):
    """``retry_message`` (with ``%(seconds)s``, whole seconds rounded up) is the message when
    none is given and the wait is known."""

    retry_message: ClassVar[str] = ""

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, **params: object
    ) -> None:
        if message is None and retry_after is not None and self.retry_message:
            message, params = self.retry_message, {"seconds": max(math.ceil(retry_after), 1)}
        super().__init__(message, **params)
        self.retry_after = retry_after


# -- input -------------------------------------------------------------------------------------
class InvalidInput(GatewayError):
    code = "INVALID_INPUT"

    def __init__(self, field: str, message: str, **params: object) -> None:
        super().__init__(message, **params)
        self.field = field


class InvalidState(_WithField):
    code = "INVALID_STATE"
    default_field = "state"


class UnknownApp(_WithField):
    code = "UNKNOWN_APP"
    default_field = "app"


class UnsupportedAppKind(_WithField):
    code = "UNSUPPORTED_APP_KIND"
    default_field = "app"
    default_message = (
        "This needs a login session from a mini-program (loginByCode with a mini-program app)."
    )


# -- WeChat's verdicts -------------------------------------------------------------------------
class InvalidCode(GatewayError):
    code = "INVALID_CODE"
    default_message = "The code is invalid or expired; call wx.login for a new one."


class CodeUsed(GatewayError):
    code = "CODE_USED"
    default_message = "The code was already used; call wx.login for a new one."


class RiskBlocked(GatewayError):
    code = "RISK_BLOCKED"
    default_message = "WeChat risk control blocked this user's login."


class RateLimited(_WithRetry):
    code = "RATE_LIMITED"
    default_message = "Too many requests; wait and retry."
    retry_message = "Too many requests; retry in %(seconds)s seconds."


class AppMisconfigured(GatewayError):
    code = "APP_MISCONFIGURED"
    default_message = "WeChat rejects the gateway's credentials for this app."


class UpstreamUnavailable(GatewayError):
    code = "UPSTREAM_UNAVAILABLE"
    default_message = "WeChat is busy or unreachable; try again shortly."


class UpstreamError(GatewayError):
    code = "UPSTREAM_ERROR"
    default_message = "WeChat answered something the gateway cannot use."


WECHAT_CALL: tuple[type[GatewayError], ...] = (
    InvalidCode,
    CodeUsed,
    RiskBlocked,
    RateLimited,
    UpstreamUnavailable,
    UpstreamError,
    AppMisconfigured,
)
"""What any call to WeChat may end in (gateway.wechat.errors maps errcodes onto these)."""


# -- open data and the WeChat session ----------------------------------------------------------
class SnapshotUser(GatewayError):
    code = "SNAPSHOT_USER"
    default_message = (
        "This is a WeChat snapshot-page visitor: ask the user to open the page in WeChat to log in."
    )


class InvalidEncryptedData(GatewayError):
    code = "INVALID_ENCRYPTED_DATA"
    default_message = (
        "encryptedData/iv do not decrypt with this session: send the data wx.getUserInfo gave "
        "after your latest loginByCode, unmodified."
    )


class WatermarkMismatch(GatewayError):
    code = "WATERMARK_MISMATCH"
    default_message = "The data was made for another app (watermark appid differs)."


class OpenidMismatch(GatewayError):
    code = "OPENID_MISMATCH"
    default_message = "The data belongs to another WeChat user than this session's."


class SignatureMismatch(GatewayError):
    code = "SIGNATURE_MISMATCH"
    default_message = "signature does not match sha1(rawData + session_key)."


class SessionExpired(GatewayError):
    code = "SESSION_EXPIRED"
    default_message = (
        "The WeChat session changed since your last login (wx.login was called again): "
        "call wx.login, loginByCode, then retry."
    )


class NoUnionid(GatewayError):
    code = "NO_UNIONID"
    default_message = "WeChat gave no unionid for this user."


# -- login state -------------------------------------------------------------------------------
class NotLoggedIn(GatewayError):
    code = "NOT_LOGGED_IN"
    default_message = "Log in first: send Authorization: Bearer <accessToken>."


class InvalidRefreshToken(GatewayError):
    code = "INVALID_REFRESH_TOKEN"
    default_message = "The refresh token is invalid or expired; log in again."


class RefreshTokenReused(GatewayError):
    code = "REFRESH_TOKEN_REUSED"
    default_message = "This refresh token was already used; the session is revoked."


class AccountDisabled(GatewayError):
    code = "ACCOUNT_DISABLED"
    default_message = "This account is disabled; contact the service operator."


class ReauthenticationRequired(GatewayError):
    code = "REAUTHENTICATION_REQUIRED"
    default_message = (
        "Confirm it is you: send your password, a fresh WeChat login code, or log in again."
    )


# -- credentials -------------------------------------------------------------------------------
class InvalidCredentials(GatewayError):
    code = "INVALID_CREDENTIALS"
    default_message = "Wrong username or password."


class WeakPassword(_WithField):
    code = "WEAK_PASSWORD"
    default_field = "password"


class UsernameTaken(_WithField):
    code = "USERNAME_TAKEN"
    default_field = "username"
    default_message = "This username is taken; choose another."


class CredentialExists(GatewayError):
    code = "CREDENTIAL_EXISTS"
    default_message = "This account already has a username and password: use changePassword."


class NoPassword(GatewayError):
    code = "NO_PASSWORD"
    default_message = "This account has no password: use bindCredential first."


class Throttled(_WithRetry):
    code = "THROTTLED"
    default_message = "Too many failed attempts: wait before trying again."
    retry_message = "Too many failed attempts: try again in %(seconds)s seconds."


class TemporarilyUnavailable(_WithRetry):
    code = "TEMPORARILY_UNAVAILABLE"
    default_message = "Briefly unavailable; try again shortly."
    retry_message = "Briefly unavailable; try again in %(seconds)s seconds."


# -- the account graph -------------------------------------------------------------------------
class IdentityConflict(GatewayError):
    code = "IDENTITY_CONFLICT"
    default_message = "This WeChat identity belongs to another account; log in with it instead."


class PhoneConflict(GatewayError):
    code = "PHONE_CONFLICT"
    default_message = "This phone number belongs to another account; it was not linked."


class NotFound(_WithField):
    code = "NOT_FOUND"
    default_message = "Nothing with this id here."


class LastIdentity(GatewayError):
    code = "LAST_IDENTITY"
    default_message = (
        "This is the account's last way to log in; link another one before unlinking it."
    )


class NotEntitled(GatewayError):
    code = "NOT_ENTITLED"
    default_message = "This partner is not entitled to that."


# -- profile -----------------------------------------------------------------------------------
class ContentRejected(_WithField):
    code = "CONTENT_REJECTED"
    default_field = "nickname"
    default_message = "WeChat's content check refused this text; choose another."


class ImageTooLarge(GatewayError):
    code = "IMAGE_TOO_LARGE"
    default_message = "The image is over 1 MiB; send a smaller one."


class InvalidImage(GatewayError):
    code = "INVALID_IMAGE"
    default_message = "Not a readable JPEG, PNG or WebP image."


# -- scan to log in (gateway.weblogin) ---------------------------------------------------------
class WebLoginExpired(GatewayError):
    code = "WEB_LOGIN_EXPIRED"
    default_message = (
        "This login code is unknown, expired or already used: refresh the code on the website."
    )


class WebLoginPending(GatewayError):
    code = "WEB_LOGIN_PENDING"
    default_message = "Nobody has confirmed this login in the mini-program yet."


class WebLoginDenied(GatewayError):
    code = "WEB_LOGIN_DENIED"
    default_message = "The login was refused in the mini-program."


class WebLoginNotBound(GatewayError):
    code = "WEB_LOGIN_NOT_BOUND"
    default_message = "Only the browser that showed this login code can collect its login."


class TooExpensive(GatewayError):  # the cost rule (gateway.api)
    code = "TOO_EXPENSIVE"
    default_message = (
        "One request may ask for only one expensive field (such as personalData); "
        "send the others in requests of their own."
    )


# -- declarations ------------------------------------------------------------------------------
_DECLARED = "__gateway_errors__"


def declares(*specs: ErrorSpec) -> Callable[[F], F]:
    """Mark a use-case entry point with the errors it may raise (classes, groups such as
    ``WECHAT_CALL``, or other declared callables whose errors it passes on)."""

    def mark(fn: F) -> F:
        setattr(fn, _DECLARED, expand(specs))
        return fn

    return mark


def expand(specs: Iterable[ErrorSpec]) -> tuple[type[GatewayError], ...]:
    """The error classes behind ``specs``, in first-seen order, without repeats."""
    seen: dict[type[GatewayError], None] = {}
    for spec in specs:
        if isinstance(spec, tuple):
            seen.update(dict.fromkeys(spec))
        elif isinstance(spec, type) and issubclass(spec, GatewayError):
            seen[spec] = None
        else:
            declared = getattr(spec, _DECLARED, None)
            if declared is None:
                raise TypeError(f"{spec!r} declares no errors")
            seen.update(dict.fromkeys(declared))
    return tuple(seen)
