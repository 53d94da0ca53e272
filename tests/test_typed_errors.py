"""Every declared error of every field comes back over HTTP as its typed union member.

The unions are built from the use cases' declarations (gateway.api.results); this walks each
one, injects each declared error at the use-case boundary and reads the answer as a client
would. A field added without a case here, or an error class bound to no GraphQL type, fails.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway import errors
from gateway.api.errors import graphql_type
from gateway.api.results import declared_errors
from gateway.config import Settings, load_config
from tests.support.harness import APPS_TOML, Harness, MakeConfig, running
from tests.support.partners import partner_token

PARTNER_TOML = """
[[partners]]
client_id = "crm"
secret = "crm-secret-0123456789abcdef"
apps = ["shop-mp"]
scopes = ["accounts:lookup", "accounts:lookup-username", "accounts:lookup-phone"]
"""
SESSION_ID = "TG9naW5TZXNzaW9uSW5mbzowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA="
CLIENT = '{platform: "ios"}'
TAIL = "__typename ... on Error { code message }"


@dataclass(frozen=True)
class Case:
    """How to reach a field: its document, where its answer sits, what to inject into."""

    document: str
    path: tuple[str, ...]
    target: str | None  # "<service>.<method>" of the API's services; None: no injection needed
    auth: str = "viewer"  # or "partner" or "none"


def _mutation(call: str, name: str, target: str, auth: str = "viewer") -> Case:
    return Case(f"mutation {{ {call} {{ {TAIL} }} }}", (name,), target, auth)


def _partner(call: str, name: str, target: str = "partner_lookups.lookup") -> Case:
    document = f"{{ partner {{ __typename ... on PartnerQuery {{ {call} {{ {TAIL} }} }} }} }}"
    return Case(document, ("partner", name), target, "partner")


CASES: dict[str, Case] = {
    "LoginByCodeResult": _mutation(
        f'loginByCode(input: {{app: "shop-mp", code: "c0de", client: {CLIENT}}})',
        "loginByCode",
        "wechat_login.login_by_code",
        "none",
    ),
    "RefreshTokenResult": _mutation(
        'refreshToken(refreshToken: "r")', "refreshToken", "sessions.refresh", "none"
    ),
    "LogoutResult": _mutation("logout", "logout", "sessions.logout"),
    "BindUnionIdResult": _mutation(
        'bindUnionId(input: {encryptedData: "e", iv: "i"})',
        "bindUnionId",
        "miniprogram.bind_unionid",
    ),
    "BindPhoneNumberResult": _mutation(
        'bindPhoneNumber(input: {code: "p"})', "bindPhoneNumber", "factors.bind_phone"
    ),
    "LoginByPhoneCodeResult": _mutation(
        f'loginByPhoneCode(input: {{app: "shop-mp", code: "p", client: {CLIENT}}})',
        "loginByPhoneCode",
        "phone_login.login",
    ),
    "RequestSmsCodeResult": _mutation(
        'requestSmsCode(input: {phone: "13800138000", purpose: LOGIN, app: "shop-mp"})',
        "requestSmsCode",
        "sms.request",
    ),
    "LoginBySmsCodeResult": _mutation(
        f'loginBySmsCode(input: {{phone: "13800138000", code: "123456", app: "shop-mp", '
        f"client: {CLIENT}}})",
        "loginBySmsCode",
        "sms_login.login",
    ),
    "BindPhoneBySmsResult": _mutation(
        'bindPhoneBySms(input: {phone: "13800138000", code: "123456"})',
        "bindPhoneBySms",
        "sms_login.bind",
    ),
    "UpdateProfileResult": _mutation(
        'updateProfile(input: {nickname: "n"})', "updateProfile", "profiles.update"
    ),
    "RegisterResult": _mutation(
        'registerWithPassword(input: {username: "u", password: "p", app: "shop-mp", '
        f"client: {CLIENT}}})",
        "registerWithPassword",
        "passwords.register",
        "none",
    ),
    "PasswordLoginResult": _mutation(
        f'loginWithPassword(input: {{username: "u", password: "p", app: "shop-mp", '
        f"client: {CLIENT}}})",
        "loginWithPassword",
        "passwords.login",
        "none",
    ),
    "ChangePasswordResult": _mutation(
        'changePassword(input: {currentPassword: "a", newPassword: "b"})',
        "changePassword",
        "passwords.change_password",
    ),
    "BindCredentialResult": _mutation(
        'bindCredential(input: {username: "u", password: "p"})',
        "bindCredential",
        "factors.bind_credential",
    ),
    "LinkWechatResult": _mutation(
        'linkWechat(input: {app: "club-mp", code: "c"})', "linkWechat", "factors.link_wechat"
    ),
    "UnlinkIdentityResult": _mutation(
        'unlinkIdentity(id: "SWRlbnRpdHk6MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw")',
        "unlinkIdentity",
        "factors.unlink_identity",
    ),
    "RevokeSessionResult": _mutation(
        f'revokeSession(id: "{SESSION_ID}")',
        "revokeSession",
        "sessions.revoke",
    ),
    "RevokeSiteConsentResult": _mutation(
        'revokeSiteConsent(clientId: "c1")', "revokeSiteConsent", "consents.revoke"
    ),
    "DeleteAccountResult": _mutation(
        'deleteAccount(input: {password: "p"})', "deleteAccount", "rights.delete_account"
    ),
    "AuthorizationUrlResult": Case(
        f'{{ authorizationUrl(app: "news-oa", redirectUri: "https://x.test/cb") {{ {TAIL} }} }}',
        ("authorizationUrl",),
        "wechat_login.app",
        "none",
    ),
    "PersonalDataResult": Case(
        f"{{ viewer {{ personalData {{ {TAIL} }} }} }}",
        ("viewer", "personalData"),
        "rights.own_personal_data",
    ),
    # its one error, NOT_LOGGED_IN, is what a request without a partner token gets
    "PartnerAccessResult": Case(f"{{ partner {{ {TAIL} }} }}", ("partner",), None, "none"),
    "AccountLookupResult": _partner(
        'accountByOpenid(app: "shop-mp", openid: "o1")', "accountByOpenid"
    ),
    "BatchLookupResult": _partner(
        'accountsByOpenids(app: "shop-mp", openids: ["o1"])', "accountsByOpenids"
    ),
    "PartnerEventsResult": _partner("events(first: 1)", "events", "partner_events.page"),
    "StartWebLoginResult": _mutation(
        'startWebLogin(input: {app: "shop-mp"})', "startWebLogin", "web_logins.start", "none"
    ),
    "ApproveWebLoginResult": _mutation(
        'approveWebLogin(input: {scene: "s", approve: true})',
        "approveWebLogin",
        "web_logins.decide",
    ),
    "WebLoginRequestResult": Case(
        f'{{ webLoginRequest(scene: "s") {{ {TAIL} }} }}',
        ("webLoginRequest",),
        "web_logins.request",
    ),
    "WebLoginStatusResult": Case(
        f'{{ webLoginStatus(ticket: "t") {{ {TAIL} }} }}',
        ("webLoginStatus",),
        "web_logins.status",
        "none",
    ),
}


def instance(cls: type[errors.GatewayError]) -> errors.GatewayError:
    if cls is errors.InvalidInput:
        return errors.InvalidInput("somewhere", "injected")
    return cls("injected")


def inject(gw: Harness, target: str, exc: errors.GatewayError, monkeypatch: Any) -> None:
    """Make ``<service>.<method>`` of the running gateway raise ``exc`` (instance attribute)."""
    service_name, method_name = target.split(".")
    service = getattr(gw.app.state.api, service_name)
    original = getattr(service, method_name)

    if inspect.iscoroutinefunction(original):

        async def raising_async(*args: Any, **kwargs: Any) -> Any:
            raise exc

        monkeypatch.setattr(service, method_name, raising_async)
    else:

        def raising(*args: Any, **kwargs: Any) -> Any:
            raise exc

        monkeypatch.setattr(service, method_name, raising)


@pytest.fixture
async def gw(database_url: str, tmp_path: Path, make_config: MakeConfig) -> AsyncIterator[Harness]:
    base = make_config(database_url)
    toml = tmp_path / "partners.toml"
    toml.write_text(APPS_TOML + PARTNER_TOML, encoding="utf-8")
    config = load_config(Settings(**{**base.settings.model_dump(), "config": toml}))
    async with running(config) as harness:
        yield harness


async def _token(gw: Harness, auth: str) -> str | None:
    if auth == "viewer":
        return str((await gw.login("shop-mp", "ann"))["accessToken"])
    if auth == "partner":
        return await partner_token(gw, "crm")
    return None


def test_every_typed_field_has_a_case() -> None:
    assert set(declared_errors()) == set(CASES)


def test_every_error_class_is_bound_to_a_graphql_type() -> None:
    for cls in errors.all_error_classes():
        assert graphql_type(cls).__name__.endswith("Error"), cls


@pytest.mark.parametrize("union", sorted(CASES))
async def test_each_declared_error_answers_its_typed_member(
    gw: Harness, union: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[union]
    token = await _token(gw, case.auth)
    declared = declared_errors()[union]
    assert declared, union
    for cls in declared:
        with monkeypatch.context() as patch:
            if case.target:
                inject(gw, case.target, instance(cls), patch)
            body = await gw.gql(case.document, token=token)
        assert "errors" not in body, (union, cls, body)
        answer = body["data"]
        for key in case.path:
            answer = answer[key]
        if not case.target:  # arisen naturally, with its own message
            answer = {**answer, "message": "injected"}
        assert answer == {
            "__typename": graphql_type(cls).__name__,
            "code": cls.code,
            "message": "injected",
        }, (union, cls)


async def test_an_undeclared_error_stays_masked(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error a use case does not declare is a bug: masked, never a half-typed answer."""
    inject(gw, "sessions.refresh", errors.PhoneConflict("injected"), monkeypatch)
    body = await gw.gql(CASES["RefreshTokenResult"].document)
    assert body["data"] is None
    assert body["errors"][0]["message"] == "Internal server error."  # English: the default language
