"""Mutations for the phone number as a way in outside WeChat: SMS one-time codes."""

from __future__ import annotations

from enum import Enum

import strawberry

from gateway.api import results
from gateway.api.mutations import ClientInput, LoginSuccess, client_info, login_success
from gateway.api.rights_mutations import ReauthenticationInput, proof_of
from gateway.api.types import Account, Info, changed_account
from gateway.errors import InvalidInput, NotLoggedIn
from gateway.rights.sms_login import SmsLogin
from gateway.sms.codes import Purpose
from gateway.sms.service import SmsCodes


@strawberry.enum(description="What an SMS code is for: a code for one is no use for the other.")
class SmsPurpose(Enum):
    LOGIN = "login"
    BIND = "bind"


@strawberry.input(
    description="Send a 6-digit code (valid 5 minutes) to `phone`: +86 numbers may omit "
    "+86; other countries only where the gateway allows them."
)
class RequestSmsCodeInput:
    phone: str
    purpose: SmsPurpose
    app: str = strawberry.field(description="The app asking (its key).")
    captcha_ticket: str | None = strawberry.field(
        default=None, description="A captcha answer, where the gateway asks for one."
    )
    client: ClientInput | None = None


@strawberry.type(description="A code is on its way, if the number can receive one.")
class RequestSmsCodeSuccess:
    sent: bool = strawberry.field(
        description="Always true: the answer says nothing about "
        "whether an account holds the number."
    )


@strawberry.input(description="Log in with a phone number and the code sent to it (LOGIN).")
class LoginBySmsCodeInput:
    phone: str
    code: str
    app: str
    client: ClientInput


@strawberry.input(description="Bind a phone number with the code sent to it (BIND).")
class BindPhoneBySmsInput:
    phone: str
    code: str
    client: ClientInput | None = None
    reauthentication: ReauthenticationInput | None = None


@strawberry.type
class BindPhoneBySmsSuccess:
    account: Account
    linked: bool = strawberry.field(description="False when the phone was already linked.")


@strawberry.type
class SmsMutation:
    @results.mutation(
        "RequestSmsCodeResult",
        RequestSmsCodeSuccess,
        SmsCodes.request,
        description="Send an SMS code to a phone number; limited per number, client address, "
        "country and overall (RATE_LIMITED with retryAfterSeconds).",
    )
    async def request_sms_code(
        self, info: Info, input: RequestSmsCodeInput
    ) -> RequestSmsCodeSuccess:
        await info.context.services.sms.request(
            input.app,
            input.phone,
            Purpose(input.purpose.value),
            client_info(info, input.client),
            input.captcha_ticket,
            info.context.locale,
        )
        return RequestSmsCodeSuccess(sent=True)

    @results.mutation(
        "LoginBySmsCodeResult",
        LoginSuccess,
        InvalidInput,
        SmsLogin.login,
        description="Log in with a phone number and its SMS code; a number no account holds "
        "signs up (`isNewAccount`) unless the gateway turns sign-up off.",
    )
    async def login_by_sms_code(self, info: Info, input: LoginBySmsCodeInput) -> LoginSuccess:
        client = client_info(info, input.client)
        outcome = await info.context.services.sms_login.login(
            input.app, input.phone, input.code, client
        )
        return await login_success(info, outcome.tokens, is_new_account=outcome.is_new_account)

    @results.mutation(
        "BindPhoneBySmsResult",
        BindPhoneBySmsSuccess,
        NotLoggedIn,
        InvalidInput,
        SmsLogin.bind,
        description="Link a phone number proved by its SMS code (re-authenticated, as for "
        "bindPhoneNumber). A number on another account is PHONE_CONFLICT and stays there.",
    )
    async def bind_phone_by_sms(
        self, info: Info, input: BindPhoneBySmsInput
    ) -> BindPhoneBySmsSuccess:
        viewer = await info.context.require_viewer()
        linked = await info.context.services.sms_login.bind(
            viewer,
            proof_of(input.reauthentication),
            input.phone,
            input.code,
            client_info(info, input.client),
        )
        return BindPhoneBySmsSuccess(
            account=await changed_account(info, viewer.account_id), linked=linked
        )
