"""Mutations for credentials, linking and sessions of the logged-in account."""

from __future__ import annotations

import uuid

import strawberry
from strawberry import relay

from gateway.api import results
from gateway.api.mutations import ClientInput, LoginSuccess, client_info, login_success
from gateway.api.rights_mutations import ReauthenticationInput, proof_of
from gateway.api.types import Account, Info, changed_account
from gateway.credentials.service import Passwords
from gateway.errors import InvalidInput, NotFound, NotLoggedIn
from gateway.rights.factors import Factors
from gateway.wechat_login.service import WechatLogin


@strawberry.input
class PasswordLoginInput:
    username: str
    password: str
    app: str = strawberry.field(description="The app the user is logging in to.")
    client: ClientInput


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str
    client: ClientInput | None = None


@strawberry.input
class BindCredentialInput:
    username: str
    password: str
    client: ClientInput | None = None
    reauthentication: ReauthenticationInput | None = None


@strawberry.input
class LinkWechatInput:
    app: str
    code: str
    state: str | None = None
    client: ClientInput | None = None
    reauthentication: ReauthenticationInput | None = None


@strawberry.type
class ChangePasswordSuccess:
    revoked_sessions: int = strawberry.field(description="Other sessions logged out.")


@strawberry.type
class AccountResult:
    account: Account


@strawberry.type(description="The WeChat identity is linked; `account` is who you now are.")
class LinkWechatSuccess:
    account: Account
    merged: bool


@strawberry.type
class RevokeSessionSuccess:
    revoked: bool


def _uuid_of(global_id: strawberry.ID, type_name: str) -> uuid.UUID:
    """An id of one of the viewer's things; a malformed one is simply not found."""
    try:
        parsed = relay.GlobalID.from_id(global_id)
        if parsed.type_name != type_name:
            raise ValueError(type_name)
        return uuid.UUID(parsed.node_id)
    except Exception:
        raise NotFound("Not a %(type)s id.", field="id", type=type_name) from None


@strawberry.type
class AccountMutation:
    @results.mutation(
        "RegisterResult",
        LoginSuccess,
        Passwords.register,
        WechatLogin.app,
        description="Create a username/password account and log it in.",
    )
    async def register_with_password(self, info: Info, input: PasswordLoginInput) -> LoginSuccess:
        services = info.context.services
        app = services.wechat_login.app(input.app)
        tokens = await services.passwords.register(
            app, input.username, input.password, client_info(info, input.client)
        )
        return await login_success(info, tokens, is_new_account=True)

    @results.mutation(
        "PasswordLoginResult",
        LoginSuccess,
        Passwords.login,
        WechatLogin.app,
        description="Log in with a username and password.",
    )
    async def login_with_password(self, info: Info, input: PasswordLoginInput) -> LoginSuccess:
        context = info.context
        app = context.services.wechat_login.app(input.app)
        client = client_info(info, input.client)
        tokens = await context.services.passwords.login(
            app, input.username, input.password, client, context.device_cookie()
        )
        context.remember_device(context.services.passwords.device_cookie(input.username))
        return await login_success(info, tokens, is_new_account=False)

    @results.mutation(
        "ChangePasswordResult",
        ChangePasswordSuccess,
        NotLoggedIn,
        Passwords.change_password,
        InvalidInput,
        description="Change the password; every other session is logged out.",
    )
    async def change_password(
        self, info: Info, input: ChangePasswordInput
    ) -> ChangePasswordSuccess:
        viewer = await info.context.require_viewer()
        revoked = await info.context.services.passwords.change_password(
            viewer,
            input.current_password,
            input.new_password,
            client_info(info, input.client),
        )
        return ChangePasswordSuccess(revoked_sessions=revoked)

    @results.mutation(
        "BindCredentialResult",
        AccountResult,
        NotLoggedIn,
        Factors.bind_credential,
        description="Add a username and password to the logged-in account (re-authenticated: "
        "a recent login, or see `reauthentication`).",
    )
    async def bind_credential(self, info: Info, input: BindCredentialInput) -> AccountResult:
        viewer = await info.context.require_viewer()
        await info.context.services.factors.bind_credential(
            viewer,
            proof_of(input.reauthentication),
            input.username,
            input.password,
            client_info(info, input.client),
        )
        return AccountResult(account=await changed_account(info, viewer.account_id))

    @results.mutation(
        "LinkWechatResult",
        LinkWechatSuccess,
        NotLoggedIn,
        Factors.link_wechat,
        description="Add a WeChat identity (any app) to the logged-in account (re-authenticated: "
        "a recent login, or see `reauthentication`).",
    )
    async def link_wechat(self, info: Info, input: LinkWechatInput) -> LinkWechatSuccess:
        viewer = await info.context.require_viewer()
        resolution = await info.context.services.factors.link_wechat(
            viewer,
            proof_of(input.reauthentication),
            input.app,
            input.code,
            client_info(info, input.client),
            input.state,
        )
        account = await changed_account(info, resolution.account_id)
        return LinkWechatSuccess(account=account, merged=resolution.merged)

    @results.mutation(
        "UnlinkIdentityResult",
        AccountResult,
        NotLoggedIn,
        Factors.unlink_identity,
        InvalidInput,
        description="Remove one identity from your account (never the last; re-authenticated: "
        "a recent login, or see `reauthentication`).",
    )
    async def unlink_identity(
        self,
        info: Info,
        id: strawberry.ID,
        client: ClientInput | None = None,
        reauthentication: ReauthenticationInput | None = None,
    ) -> AccountResult:
        viewer = await info.context.require_viewer()
        await info.context.services.factors.unlink_identity(
            viewer,
            proof_of(reauthentication),
            _uuid_of(id, "Identity"),
            client_info(info, client),
        )
        return AccountResult(account=await changed_account(info, viewer.account_id))

    @results.mutation(
        "RevokeSessionResult",
        RevokeSessionSuccess,
        NotLoggedIn,
        NotFound,
        InvalidInput,
        description="Log out one of your sessions (see viewer.sessions).",
    )
    async def revoke_session(
        self, info: Info, id: strawberry.ID, client: ClientInput | None = None
    ) -> RevokeSessionSuccess:
        viewer = await info.context.require_viewer()
        client_facts = client_info(info, client)
        session_id = _uuid_of(id, "LoginSessionInfo")
        if not await info.context.services.sessions.revoke(viewer, session_id, client_facts):
            raise NotFound("No such live session.")
        return RevokeSessionSuccess(revoked=True)
