"""Mutations for frontends: login by code, refresh, logout. Errors are typed by `results`."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import strawberry

from gateway.api import results
from gateway.api.types import Account, Info, changed_account
from gateway.audit import ClientInfo
from gateway.errors import InvalidInput, NotLoggedIn
from gateway.sessions.model import IssuedTokens
from gateway.sessions.service import Sessions
from gateway.wechat_login.service import WechatLogin


@strawberry.input(
    description="Facts about the client, recorded with every mutation for risk control."
)
class ClientInput:
    platform: str = strawberry.field(description="e.g. ios, android, devtools, web, windows.")
    channel: str | None = strawberry.field(default=None, description="Install or launch channel.")
    device_param: str | None = strawberry.field(default=None, description="Opaque device facts.")


@strawberry.input
class LoginByCodeInput:
    app: str = strawberry.field(description="The app key, as listed by `apps`.")
    code: str = strawberry.field(description="The code from wx.login (5 minutes, single use).")
    client: ClientInput
    state: str | None = strawberry.field(
        default=None,
        description="Official accounts and websites: the `state` WeChat sent back to your "
        "redirect URI (made by `authorizationUrl`).",
    )


@strawberry.type(description="A login: the gateway's own tokens for this account.")
class LoginSuccess:
    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime
    is_new_account: bool
    account: Account
    deletion_cancelled: bool = strawberry.field(
        description="This login cancelled the account's pending deletion (deleteAccount's "
        "cooling-off period): tell the person."
    )


@strawberry.type(description="A refreshed login: the old refresh token is now spent.")
class RefreshSuccess:
    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime
    account: Account


@strawberry.type
class LogoutSuccess:
    revoked_sessions: int


def client_info(info: Info, client: ClientInput | None) -> ClientInfo:
    """The client's facts; their characters and lengths were checked at the edge
    (``gateway.api.inputs``)."""
    if client is None:
        return info.context.client("unknown", None, None)
    if not client.platform.strip():
        raise InvalidInput("client.platform", "client.platform must not be empty.")
    return info.context.client(client.platform, client.channel, client.device_param)


class _TokenFields(TypedDict):
    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime
    account: Account


async def _tokens(info: Info, issued: IssuedTokens) -> _TokenFields:
    return {
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_at": issued.expires_at,
        "refresh_expires_at": issued.refresh_expires_at,
        "account": await _account_of(info, issued),
    }


async def _account_of(info: Info, issued: IssuedTokens) -> Account:
    """The account the tokens are for: as the use case read it, when it could (a refresh),
    else read again (a login may just have changed it)."""
    if issued.account is not None:
        return Account.from_view(issued.account)
    return await changed_account(info, issued.account_id)


async def login_success(info: Info, issued: IssuedTokens, *, is_new_account: bool) -> LoginSuccess:
    fields = await _tokens(info, issued)
    return LoginSuccess(
        is_new_account=is_new_account, deletion_cancelled=issued.deletion_cancelled, **fields
    )


@strawberry.type
class Mutation:
    @results.mutation(
        "LoginByCodeResult",
        LoginSuccess,
        InvalidInput,
        WechatLogin.login_by_code,
        description="Silent login with a wx.login code.",
    )
    async def login_by_code(self, info: Info, input: LoginByCodeInput) -> LoginSuccess:
        client = client_info(info, input.client)
        outcome = await info.context.services.wechat_login.login_by_code(
            input.app, input.code, client, input.state
        )
        return await login_success(info, outcome.tokens, is_new_account=outcome.is_new_account)

    @results.mutation(
        "RefreshTokenResult",
        RefreshSuccess,
        Sessions.refresh,
        InvalidInput,
        description="Trade a refresh token for new tokens (rotation).",
    )
    async def refresh_token(
        self, info: Info, refresh_token: str, client: ClientInput | None = None
    ) -> RefreshSuccess:
        if not refresh_token or len(refresh_token) > 128:
            raise InvalidInput("refreshToken", "refreshToken is empty or too long.")
        issued = await info.context.services.sessions.refresh(
            refresh_token, client_info(info, client)
        )
        return RefreshSuccess(**await _tokens(info, issued))

    @results.mutation(
        "LogoutResult",
        LogoutSuccess,
        NotLoggedIn,
        InvalidInput,
        description="End this login session, or every session of the account.",
    )
    async def logout(
        self, info: Info, everywhere: bool = False, client: ClientInput | None = None
    ) -> LogoutSuccess:
        viewer = await info.context.require_viewer()
        count = await info.context.services.sessions.logout(
            viewer, everywhere, client_info(info, client)
        )
        return LogoutSuccess(revoked_sessions=count)
