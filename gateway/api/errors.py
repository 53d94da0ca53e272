"""Expected failures as typed GraphQL results: one ``Error`` interface, a stable ``code``."""

from __future__ import annotations

from enum import Enum

import strawberry

from gateway.errors import GatewayError


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


@strawberry.type(description="WeChat is unavailable or misconfigured; retrying later may help.")
class UpstreamError(Error):
    pass


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


_BY_CODE: dict[str, type[Error]] = {
    "INVALID_INPUT": InvalidInputError,
    "UNKNOWN_APP": UnknownAppError,
    "UNSUPPORTED_APP_KIND": UnknownAppError,
    "INVALID_CODE": CodeRejectedError,
    "CODE_USED": CodeRejectedError,
    "RISK_BLOCKED": LoginBlockedError,
    "RATE_LIMITED": RateLimitedError,
    "UPSTREAM_UNAVAILABLE": UpstreamError,
    "UPSTREAM_ERROR": UpstreamError,
    "APP_MISCONFIGURED": UpstreamError,
    "NOT_LOGGED_IN": NotAuthenticatedError,
    "INVALID_REFRESH_TOKEN": RefreshTokenError,
    "REFRESH_TOKEN_REUSED": RefreshTokenError,
    "INVALID_STATE": InvalidInputError,
    "SNAPSHOT_USER": SnapshotUserError,
    "INVALID_ENCRYPTED_DATA": OpenDataError,
    "WATERMARK_MISMATCH": OpenDataError,
    "OPENID_MISMATCH": OpenDataError,
    "SIGNATURE_MISMATCH": OpenDataError,
    "SESSION_EXPIRED": SessionExpiredError,
    "NO_UNIONID": NoUnionIdError,
    "PHONE_CONFLICT": ConflictError,
    "INVALID_CREDENTIALS": InvalidCredentialsError,
    "WEAK_PASSWORD": WeakPasswordError,
    "USERNAME_TAKEN": ConflictError,
    "CREDENTIAL_EXISTS": ConflictError,
    "IDENTITY_CONFLICT": ConflictError,
    "THROTTLED": RateLimitedError,
    "TEMPORARILY_UNAVAILABLE": UpstreamError,
    "NOT_FOUND": NotFoundError,
    "NO_PASSWORD": NotFoundError,
    "LAST_IDENTITY": LastIdentityError,
    "NOT_ENTITLED": NotEntitledError,
}


def to_error(exc: GatewayError) -> Error:
    """The typed result for a domain error; an unmapped code is a bug, and stays unexpected."""
    cls = _BY_CODE.get(exc.code)
    if cls is None:
        raise exc
    code = ErrorCode(exc.code)
    if cls is InvalidInputError or cls is WeakPasswordError:
        return cls(code=code, message=exc.message, field=exc.field)
    if cls is RateLimitedError:
        return RateLimitedError(code=code, message=exc.message, retry_after_seconds=exc.retry_after)
    return cls(code=code, message=exc.message)


def not_authenticated() -> NotAuthenticatedError:
    return NotAuthenticatedError(
        code=ErrorCode.NOT_LOGGED_IN,
        message="Log in first: send Authorization: Bearer <accessToken>.",
    )
