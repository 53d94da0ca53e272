"""Mutations for a logged-in mini-program user: bind the unionid, bind the phone number."""

from __future__ import annotations

import strawberry

from gateway.api import results
from gateway.api.mutations import ClientInput, LoginSuccess, client_info, login_success
from gateway.api.rights_mutations import ReauthenticationInput, proof_of
from gateway.api.types import Account, Info, changed_account
from gateway.errors import InvalidInput, NotLoggedIn, UpstreamUnavailable
from gateway.miniprogram.service import MiniProgramSessions
from gateway.rights.factors import Factors
from gateway.rights.phone_login import PhoneLogin


@strawberry.input(description="Exactly what wx.getUserInfo gave the mini-program.")
class BindUnionIdInput:
    encrypted_data: str
    iv: str
    raw_data: str | None = None
    signature: str | None = None
    client: ClientInput | None = None


@strawberry.type(description="The unionid is linked; `account` is the account you now are.")
class BindUnionIdSuccess:
    account: Account
    merged: bool = strawberry.field(
        description="True when this proved two accounts were one person and they were merged."
    )
    linked: bool = strawberry.field(description="False when the unionid was already linked.")


@strawberry.input(description='The code from <button open-type="getPhoneNumber">.')
class BindPhoneNumberInput:
    code: str
    client: ClientInput | None = None
    reauthentication: ReauthenticationInput | None = None


@strawberry.input(description="A one-tap login with the phone number WeChat verified.")
class LoginByPhoneCodeInput:
    app: str = strawberry.field(description="The mini-program's key; the bearer token's app.")
    code: str = strawberry.field(
        description='The code from <button open-type="getPhoneNumber"> (or '
        "getRealtimePhoneNumber), not from wx.login."
    )
    client: ClientInput


@strawberry.type
class BindPhoneNumberSuccess:
    account: Account
    linked: bool = strawberry.field(description="False when the phone was already linked.")


@strawberry.type
class WechatMutation:
    @results.mutation(
        "BindUnionIdResult",
        BindUnionIdSuccess,
        NotLoggedIn,
        MiniProgramSessions.bind_unionid,
        InvalidInput,
        UpstreamUnavailable,  # in this union since 0.1: clients may spread `... on UpstreamError`
        description="Link the unionid from wx.getUserInfo's encrypted data; may "
        "merge accounts the unionid proves to be one person.",
    )
    async def bind_union_id(self, info: Info, input: BindUnionIdInput) -> BindUnionIdSuccess:
        viewer = await info.context.require_viewer()
        outcome = await info.context.services.miniprogram.bind_unionid(
            viewer,
            input.encrypted_data,
            input.iv,
            input.raw_data,
            input.signature,
            client_info(info, input.client),
        )
        account = await changed_account(info, outcome.account_id)
        return BindUnionIdSuccess(account=account, merged=outcome.merged, linked=outcome.linked)

    @results.mutation(
        "LoginByPhoneCodeResult",
        LoginSuccess,
        NotLoggedIn,
        InvalidInput,
        PhoneLogin.login,
        description="Log in with the phone number: the caller (the silent login's bearer token) "
        "gets the phone when nobody holds it, and a new login replacing the silent one "
        "(`isNewAccount`: the phone was bound now). A phone on another account is "
        "PHONE_CONFLICT and changes nothing. Needs a recent login, like bindPhoneNumber.",
    )
    async def login_by_phone_code(self, info: Info, input: LoginByPhoneCodeInput) -> LoginSuccess:
        viewer = await info.context.require_viewer()
        client = client_info(info, input.client)
        outcome = await info.context.services.phone_login.login(
            viewer, input.app, input.code, client
        )
        return await login_success(info, outcome.tokens, is_new_account=outcome.is_new_account)

    @results.mutation(
        "BindPhoneNumberResult",
        BindPhoneNumberSuccess,
        NotLoggedIn,
        Factors.bind_phone,
        InvalidInput,
        description="Link the phone number WeChat verified for this user (re-authenticated: "
        "a recent login, such as the launch login, or see `reauthentication`).",
    )
    async def bind_phone_number(
        self, info: Info, input: BindPhoneNumberInput
    ) -> BindPhoneNumberSuccess:
        viewer = await info.context.require_viewer()
        linked = await info.context.services.factors.bind_phone(
            viewer,
            proof_of(input.reauthentication),
            input.code,
            client_info(info, input.client),
        )
        return BindPhoneNumberSuccess(
            account=await changed_account(info, viewer.account_id), linked=linked
        )
