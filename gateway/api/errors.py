"""Expected failures as typed GraphQL results: one ``Error`` interface, a stable ``code``."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import strawberry

from gateway import errors


@strawberry.enum(description="Stable, machine-readable reasons for an expected failure.")
class ErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    UNKNOWN_APP = "UNKNOWN_APP"
    UNSUPPORTED_APP_KIND = "UNSUPPORTED_APP_KIND"
    INVALID_CODE = "INVALID_CODE"
    CODE_USED = "CODE_USED"
    RISK_BLOCKED = "RISK_BLOCKED"
    RATE_LIMITED = "RATE_LIMITED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    APP_MISCONFIGURED = "APP_MISCONFIGURED"
    NOT_LOGGED_IN = "NOT_LOGGED_IN"
    INVALID_REFRESH_TOKEN = "INVALID_REFRESH_TOKEN"
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"
    INVALID_STATE = "INVALID_STATE"
    SNAPSHOT_USER = "SNAPSHOT_USER"
    INVALID_ENCRYPTED_DATA = "INVALID_ENCRYPTED_DATA"
    WATERMARK_MISMATCH = "WATERMARK_MISMATCH"
    OPENID_MISMATCH = "OPENID_MISMATCH"
    SIGNATURE_MISMATCH = "SIGNATURE_MISMATCH"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    NO_UNIONID = "NO_UNIONID"
    PHONE_CONFLICT = "PHONE_CONFLICT"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    USERNAME_TAKEN = "USERNAME_TAKEN"
    CREDENTIAL_EXISTS = "CREDENTIAL_EXISTS"
    IDENTITY_CONFLICT = "IDENTITY_CONFLICT"
    THROTTLED = "THROTTLED"
    TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
    NOT_FOUND = "NOT_FOUND"
    NO_PASSWORD = "NO_PASSWORD"
    LAST_IDENTITY = "LAST_IDENTITY"
    NOT_ENTITLED = "NOT_ENTITLED"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    TOO_EXPENSIVE = "TOO_EXPENSIVE"
    CONTENT_REJECTED = "CONTENT_REJECTED"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    INVALID_IMAGE = "INVALID_IMAGE"
    WEB_LOGIN_EXPIRED = "WEB_LOGIN_EXPIRED"
    WEB_LOGIN_PENDING = "WEB_LOGIN_PENDING"
    WEB_LOGIN_DENIED = "WEB_LOGIN_DENIED"
    WEB_LOGIN_NOT_BOUND = "WEB_LOGIN_NOT_BOUND"


@strawberry.interface(description="An expected failure: branch on `code`, show `message`.")
class Error:
    code: ErrorCode
    message: str


@strawberry.type(description="The input is malformed; `field` names the culprit.")
class InvalidInputError(Error):
    field: str | None


@strawberry.type(description="No app is configured with this key, or it cannot log in this way.")
class UnknownAppError(Error):
    pass


@strawberry.type(description="WeChat rejected the code (INVALID_CODE, CODE_USED): get a new one.")
class CodeRejectedError(Error):
    pass


@strawberry.type(description="WeChat risk control refused this user's login (RISK_BLOCKED).")
class LoginBlockedError(Error):
    pass


@strawberry.type(description="Too many attempts; retry after `retryAfterSeconds` when given.")
class RateLimitedError(Error):
    retry_after_seconds: float | None


@strawberry.type(
    description="WeChat, or a part of the gateway (password hashing, shared counters), is "
    "unavailable or misconfigured; retrying later may help, after `retryAfterSeconds` when given."
)
class UpstreamError(Error):
    retry_after_seconds: float | None = None


@strawberry.type(description="This needs a valid access token (Authorization: Bearer ...).")
class NotAuthenticatedError(Error):
    pass


@strawberry.type(description="The refresh token is invalid, expired or was reused: log in again.")
class RefreshTokenError(Error):
    pass


@strawberry.type(description="A WeChat snapshot-page visitor (fake ids): no account is touched.")
class SnapshotUserError(Error):
    pass


@strawberry.type(
    description="The open data does not check out: INVALID_ENCRYPTED_DATA, "
    "WATERMARK_MISMATCH, OPENID_MISMATCH or SIGNATURE_MISMATCH."
)
class OpenDataError(Error):
    pass


@strawberry.type(
    description="The WeChat session_key rotated (wx.login was called again): "
    "call wx.login and loginByCode, then retry."
)
class SessionExpiredError(Error):
    pass


@strawberry.type(description="WeChat gives this app or user no unionid (no open platform).")
class NoUnionIdError(Error):
    pass


@strawberry.type(description="The identifier belongs to another account and was not linked.")
class ConflictError(Error):
    pass


@strawberry.type(description="Wrong username or password (never says which).")
class InvalidCredentialsError(Error):
    pass


@strawberry.type(description="The password breaks the policy; `field` is `password`.")
class WeakPasswordError(Error):
    field: str | None


@strawberry.type(description="Nothing with this id here (NOT_FOUND), or no password (NO_PASSWORD).")
class NotFoundError(Error):
    pass


@strawberry.type(description="The account's last identity cannot be unlinked.")
class LastIdentityError(Error):
    pass


@strawberry.type(description="The partner's credentials do not cover this app, platform or scope.")
class NotEntitledError(Error):
    pass


@strawberry.type(description="The account is disabled by the operator: no login until enabled.")
class AccountDisabledError(Error):
    pass


@strawberry.type(
    description="Confirm it is you first: a password, a fresh WeChat code, or a recent login."
)
class ReauthenticationRequiredError(Error):
    pass


@strawberry.type(
    description="The request asks for more expensive fields than one request may (each "
    "`personalData` counts); ask for this one in a request of its own."
)
class TooExpensiveError(Error):
    pass


@strawberry.type(
    description="The content was refused: CONTENT_REJECTED (WeChat's content check judged the "
    "text risky; `field` names it), IMAGE_TOO_LARGE or INVALID_IMAGE (an avatar)."
)
class ContentRejectedError(Error):
    field: str | None = None


@strawberry.type(
    description="A scan login cannot go on: WEB_LOGIN_EXPIRED (the code is unknown, expired "
    "or used: show a new one), WEB_LOGIN_PENDING, WEB_LOGIN_DENIED or WEB_LOGIN_NOT_BOUND "
    "(another browser's login)."
)
class WebLoginError(Error):
    pass


_BINDINGS: dict[type[errors.GatewayError], type[Error]] = {
    errors.InvalidInput: InvalidInputError,
    errors.InvalidState: InvalidInputError,
    errors.UnknownApp: UnknownAppError,
    errors.UnsupportedAppKind: UnknownAppError,
    errors.InvalidCode: CodeRejectedError,
    errors.CodeUsed: CodeRejectedError,
    errors.RiskBlocked: LoginBlockedError,
    errors.RateLimited: RateLimitedError,
    errors.Throttled: RateLimitedError,
    errors.UpstreamUnavailable: UpstreamError,
    errors.UpstreamError: UpstreamError,
    errors.AppMisconfigured: UpstreamError,
    errors.TemporarilyUnavailable: UpstreamError,
    errors.NotLoggedIn: NotAuthenticatedError,
    errors.InvalidRefreshToken: RefreshTokenError,
    errors.RefreshTokenReused: RefreshTokenError,
    errors.SnapshotUser: SnapshotUserError,
    errors.InvalidEncryptedData: OpenDataError,
    errors.WatermarkMismatch: OpenDataError,
    errors.OpenidMismatch: OpenDataError,
    errors.SignatureMismatch: OpenDataError,
    errors.SessionExpired: SessionExpiredError,
    errors.NoUnionid: NoUnionIdError,
    errors.PhoneConflict: ConflictError,
    errors.UsernameTaken: ConflictError,
    errors.CredentialExists: ConflictError,
    errors.IdentityConflict: ConflictError,
    errors.InvalidCredentials: InvalidCredentialsError,
    errors.WeakPassword: WeakPasswordError,
    errors.NotFound: NotFoundError,
    errors.NoPassword: NotFoundError,
    errors.LastIdentity: LastIdentityError,
    errors.NotEntitled: NotEntitledError,
    errors.AccountDisabled: AccountDisabledError,
    errors.ReauthenticationRequired: ReauthenticationRequiredError,
    errors.TooExpensive: TooExpensiveError,
    errors.ContentRejected: ContentRejectedError,
    errors.ImageTooLarge: ContentRejectedError,
    errors.InvalidImage: ContentRejectedError,
    errors.WebLoginExpired: WebLoginError,
    errors.WebLoginPending: WebLoginError,
    errors.WebLoginDenied: WebLoginError,
    errors.WebLoginNotBound: WebLoginError,
}


def graphql_type(error: type[errors.GatewayError]) -> type[Error]:
    """The union member an error class is bound to (KeyError: an unbound class is a bug)."""
    return _BINDINGS[error]


def to_graphql(exc: errors.GatewayError) -> Error:
    """The typed result for a declared error."""
    cls = _BINDINGS[type(exc)]
    fields: dict[str, Any] = {"code": ErrorCode(exc.code), "message": exc.message}
    names = {f.name for f in dataclasses.fields(cls)}
    if "field" in names:
        fields["field"] = exc.field
    if "retry_after_seconds" in names:
        fields["retry_after_seconds"] = exc.retry_after
    return cls(**fields)
