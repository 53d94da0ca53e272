"""Mutations for credentials, linking and sessions of the logged-in account."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry import relay

from gateway.api.errors import (
    CodeRejectedError,
    ConflictError,
    ErrorCode,
    InvalidCredentialsError,
    InvalidInputError,
    LastIdentityError,
    LoginBlockedError,
    NotAuthenticatedError,
    NotFoundError,
    RateLimitedError,
    SnapshotUserError,
    UnknownAppError,
    UpstreamError,
    WeakPasswordError,
    not_authenticated,
    to_error,
)
from gateway.api.mutations import ClientInput, LoginSuccess, client_info, login_success
from gateway.api.types import Account, Info, changed_account
from gateway.errors import GatewayError, invalid_input


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


@strawberry.input
class LinkWechatInput:
    app: str
    code: str
    state: str | None = None
    client: ClientInput | None = None


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


PasswordLoginResult = Annotated[
    LoginSuccess
    | InvalidCredentialsError
    | RateLimitedError
    | UnknownAppError
    | InvalidInputError
    | UpstreamError,
    strawberry.union("PasswordLoginResult"),
]
RegisterResult = Annotated[
    LoginSuccess
    | WeakPasswordError
    | ConflictError
    | RateLimitedError
    | UnknownAppError
    | InvalidInputError
    | UpstreamError,
    strawberry.union("RegisterResult"),
]
ChangePasswordResult = Annotated[
    ChangePasswordSuccess
    | NotAuthenticatedError
    | InvalidCredentialsError
    | WeakPasswordError
    | InvalidInputError
    | NotFoundError
    | RateLimitedError
    | UpstreamError,
    strawberry.union("ChangePasswordResult"),
]
BindCredentialResult = Annotated[
    AccountResult | NotAuthenticatedError | ConflictError | WeakPasswordError | InvalidInputError,
    strawberry.union("BindCredentialResult"),
]
LinkWechatResult = Annotated[
    LinkWechatSuccess
    | NotAuthenticatedError
    | ConflictError
    | CodeRejectedError
    | LoginBlockedError
    | RateLimitedError
    | UpstreamError
    | SnapshotUserError
    | InvalidInputError
    | UnknownAppError,
    strawberry.union("LinkWechatResult"),
]
UnlinkIdentityResult = Annotated[
    AccountResult | NotAuthenticatedError | NotFoundError | LastIdentityError | InvalidInputError,
    strawberry.union("UnlinkIdentityResult"),
]
RevokeSessionResult = Annotated[
    RevokeSessionSuccess | NotAuthenticatedError | NotFoundError | InvalidInputError,
    strawberry.union("RevokeSessionResult"),
]


def _uuid_of(global_id: strawberry.ID, type_name: str) -> uuid.UUID:
    try:
        parsed = relay.GlobalID.from_id(global_id)
        if parsed.type_name != type_name:
            raise ValueError(type_name)
        return uuid.UUID(parsed.node_id)
    except Exception:
        raise invalid_input("id", f"Not a {type_name} id.") from None


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="Create a username/password account and log it in.")
    async def register_with_password(self, info: Info, input: PasswordLoginInput) -> RegisterResult:
        services = info.context.services
        try:
            app = services.wechat_login.app(input.app)
            tokens = await services.passwords.register(
                app, input.username, input.password, client_info(info, input.client)
            )
        except GatewayError as exc:
            return to_error(exc)  # type: ignore[return-value]
        return await login_success(info, tokens, is_new_account=True)

    @strawberry.mutation(description="Log in with a username and password.")
    async def login_with_password(
        self, info: Info, input: PasswordLoginInput
    ) -> PasswordLoginResult:
        services = info.context.services
        try:
            app = services.wechat_login.app(input.app)
            tokens = await services.passwords.login(
                app, input.username, input.password, client_info(info, input.client)
            )
        except GatewayError as exc:
            return to_error(exc)  # type: ignore[return-value]
        return await login_success(info, tokens, is_new_account=False)

    @strawberry.mutation(description="Change the password; every other session is logged out.")
    async def change_password(self, info: Info, input: ChangePasswordInput) -> ChangePasswordResult:
        viewer = await info.context.viewer()
        if viewer is None:
            return not_authenticated()
        try:
            revoked = await info.context.services.passwords.change_password(
                viewer,
                input.current_password,
                input.new_password,
                client_info(info, input.client),
            )
        except GatewayError as exc:
            return to_error(exc)  # type: ignore[return-value]
        return ChangePasswordSuccess(revoked_sessions=revoked)

    @strawberry.mutation(description="Add a username and password to the logged-in account.")
    async def bind_credential(self, info: Info, input: BindCredentialInput) -> BindCredentialResult:
        viewer = await info.context.viewer()
        if viewer is None:
            return not_authenticated()
        try:
            await info.context.services.passwords.bind(
                viewer, input.username, input.password, client_info(info, input.client)
            )
        except GatewayError as exc:
            return to_error(exc)  # type: ignore[return-value]
        return AccountResult(account=await changed_account(info, viewer.account_id))

    @strawberry.mutation(description="Add a WeChat identity (any app) to the logged-in account.")
    async def link_wechat(self, info: Info, input: LinkWechatInput) -> LinkWechatResult:
        viewer = await info.context.viewer()
        if viewer is None:
            return not_authenticated()
        try:
            resolution = await info.context.services.wechat_login.link(
                viewer, input.app, input.code, client_info(info, input.client), input.state
            )
        except GatewayError as exc:
            return to_error(exc)  # type: ignore[return-value]
        account = await changed_account(info, resolution.account_id)
        return LinkWechatSuccess(account=account, merged=resolution.merged)

    @strawberry.mutation(description="Remove one identity from your account (never the last).")
    async def unlink_identity(
        self, info: Info, id: strawberry.ID, client: ClientInput | None = None
    ) -> UnlinkIdentityResult:
        viewer = await info.context.viewer()
        if viewer is None:
            return not_authenticated()
        try:
            await info.context.services.unlink(
                viewer, _uuid_of(id, "Identity"), client_info(info, client)
            )
        except GatewayError as exc:
            if exc.code == "INVALID_INPUT" and exc.field == "id":
                exc = GatewayError("NOT_FOUND", exc.message)
            return to_error(exc)  # type: ignore[return-value]
        return AccountResult(account=await changed_account(info, viewer.account_id))

    @strawberry.mutation(description="Log out one of your sessions (see viewer.sessions).")
    async def revoke_session(
        self, info: Info, id: strawberry.ID, client: ClientInput | None = None
    ) -> RevokeSessionResult:
        viewer = await info.context.viewer()
        if viewer is None:
            return not_authenticated()
        try:
            client_facts = client_info(info, client)
            session_id = _uuid_of(id, "LoginSessionInfo")
        except GatewayError as exc:
            if exc.field == "id":
                exc = GatewayError("NOT_FOUND", exc.message)
            return to_error(exc)  # type: ignore[return-value]
        done = await info.context.services.sessions.revoke(viewer, session_id, client_facts)
        if not done:
            return NotFoundError(code=ErrorCode.NOT_FOUND, message="No such live session.")
        return RevokeSessionSuccess(revoked=True)
