"""What WeChat's errcodes mean to the gateway (WECHAT.md §1, §2).

Every failed WeChat call ends in one of the ``WECHAT_CALL`` classes of ``gateway.errors``,
carrying WeChat's ``errcode`` (when it gave one) and whether a retry may help::

    (code rejected)   InvalidCode, CodeUsed: the client must call wx.login again
    (user rejected)   RiskBlocked, RateLimited
    (our fault)       AppMisconfigured: wrong appid or secret, an operator must act
    (upstream fault)  UpstreamUnavailable (busy, timeout, network), UpstreamError (an answer
                      we cannot read, or an errcode we do not know)

Only ``retryable`` failures are retried; a code is never sent twice after WeChat judged it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import (
    WECHAT_CALL,
    AppMisconfigured,
    CodeUsed,
    GatewayError,
    InvalidCode,
    RateLimited,
    RiskBlocked,
    UpstreamError,
    UpstreamUnavailable,
    error_class,
)

WeChatError = WECHAT_CALL
"""For ``except WeChatError``: every failure a WeChat call can end in."""


@dataclass(frozen=True)
class _Meaning:
    error: type[GatewayError]
    message: str
    retryable: bool = False


BUSY = _Meaning(UpstreamUnavailable, "WeChat is busy or unreachable; try again shortly.", True)

ERRCODES: dict[int, _Meaning] = {
    -1: BUSY,
    40029: _Meaning(InvalidCode, "The code is invalid or expired; call wx.login for a new one."),
    42003: _Meaning(InvalidCode, "The code has expired; ask the user to authorize again."),
    40163: _Meaning(CodeUsed, "The code was already used; call wx.login for a new one."),
    40226: _Meaning(RiskBlocked, "WeChat risk control blocked this user's login."),
    45011: _Meaning(RateLimited, "WeChat rate-limited this user; wait a minute and retry."),
    40013: _Meaning(AppMisconfigured, "The gateway's appid for this app is rejected by WeChat."),
    40125: _Meaning(AppMisconfigured, "The gateway's secret for this app is rejected by WeChat."),
    41008: _Meaning(InvalidCode, "The code is missing."),
    48001: _Meaning(UpstreamError, "This scope does not allow reading the user's profile."),
    41030: _Meaning(
        AppMisconfigured, "WeChat knows no such published page ([web_scan] page, check_path)."
    ),
    40169: _Meaning(UpstreamError, "WeChat refused the scene of the mini-program code."),
    45009: _Meaning(RateLimited, "WeChat's daily quota for this call is spent; retry later."),
}

# The app access token was rejected: the owner refreshes it once and the call is retried once.
STALE_APP_TOKEN = frozenset({40001, 42001})


def _upstream(
    error: type[GatewayError], message: str, errcode: int | None, retryable: bool
) -> GatewayError:
    exc = error(message)
    exc.errcode = errcode
    exc.retryable = retryable
    return exc


def from_errcode(errcode: int) -> GatewayError:
    """WeChat answered ``errcode``. ``str()`` never includes secrets, codes or session keys."""
    meaning = ERRCODES.get(errcode)
    if meaning is None:
        return _upstream(UpstreamError, f"WeChat answered errcode {errcode}.", errcode, False)
    return _upstream(meaning.error, meaning.message, errcode, meaning.retryable)


def unavailable(why: str) -> GatewayError:
    return _upstream(
        UpstreamUnavailable, f"WeChat is unreachable ({why}); try again shortly.", None, True
    )


def malformed(why: str) -> GatewayError:
    return _upstream(UpstreamError, f"WeChat answered something unreadable ({why}).", None, False)


def restored(code: str, message: str, errcode: int | None) -> GatewayError:
    """An outcome another process remembered (shared single-flight), as the same class."""
    return _upstream(error_class(code), message, errcode, False)
