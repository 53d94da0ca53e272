"""What WeChat's errcodes mean to the gateway (WECHAT.md §1, §2).

Exception tree::

    WeChatError              every failure of a WeChat call, with a stable ``code``
    ├── (code rejected)      INVALID_CODE, CODE_USED: the client must call wx.login again
    ├── (user rejected)      RISK_BLOCKED, RATE_LIMITED
    ├── (our fault)          APP_MISCONFIGURED: wrong appid or secret, an operator must act
    └── (upstream fault)     UPSTREAM_UNAVAILABLE (busy, timeout, network), UPSTREAM_ERROR
                             (an answer we cannot read, or an errcode we do not know)

Only ``retryable`` failures are retried; a code is never sent twice after WeChat judged it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import GatewayError


@dataclass(frozen=True)
class _Meaning:
    code: str
    message: str
    retryable: bool = False


BUSY = _Meaning("UPSTREAM_UNAVAILABLE", "WeChat is busy or unreachable; try again shortly.", True)

ERRCODES: dict[int, _Meaning] = {
    -1: BUSY,
    40029: _Meaning("INVALID_CODE", "The code is invalid or expired; call wx.login for a new one."),
    42003: _Meaning("INVALID_CODE", "The code has expired; ask the user to authorize again."),
    40163: _Meaning("CODE_USED", "The code was already used; call wx.login for a new one."),
    40226: _Meaning("RISK_BLOCKED", "WeChat risk control blocked this user's login."),
    45011: _Meaning("RATE_LIMITED", "WeChat rate-limited this user; wait a minute and retry."),
    40013: _Meaning("APP_MISCONFIGURED", "The gateway's appid for this app is rejected by WeChat."),
    40125: _Meaning(
        "APP_MISCONFIGURED", "The gateway's secret for this app is rejected by WeChat."
    ),
    41008: _Meaning("INVALID_CODE", "The code is missing."),
    48001: _Meaning("UPSTREAM_ERROR", "This scope does not allow reading the user's profile."),
}

# The app access token was rejected: the owner refreshes it once and the call is retried once.
STALE_APP_TOKEN = frozenset({40001, 42001})


class WeChatError(GatewayError):
    """A failed WeChat call. ``str()`` never includes secrets, codes or session keys."""

    def __init__(
        self, code: str, message: str, *, errcode: int | None = None, retryable: bool = False
    ) -> None:
        super().__init__(code, message)
        self.errcode = errcode
        self.retryable = retryable

    @classmethod
    def from_errcode(cls, errcode: int) -> WeChatError:
        meaning = ERRCODES.get(errcode)
        if meaning is None:
            return cls("UPSTREAM_ERROR", f"WeChat answered errcode {errcode}.", errcode=errcode)
        return cls(meaning.code, meaning.message, errcode=errcode, retryable=meaning.retryable)

    @classmethod
    def unavailable(cls, why: str) -> WeChatError:
        return cls(BUSY.code, f"WeChat is unreachable ({why}); try again shortly.", retryable=True)

    @classmethod
    def malformed(cls, why: str) -> WeChatError:
        return cls("UPSTREAM_ERROR", f"WeChat answered something unreadable ({why}).")
