"""SMS one-time codes over GraphQL with the sandbox provider (issue 28): request a code, read
it from /sandbox/sms, log in; the number is one identity with the mini-program's phone button;
the limits against SMS pumping; no enumeration; a provider outage is a typed answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.audit import ClientInfo
from gateway.config import ConfigError
from gateway.sms.provider import SmsMessage, SmsUnavailable
from tests.support.accounts import audit_events
from tests.support.harness import Configure, Harness, running
from tests.support.processes import free_port
from tests.support.sms import (  # noqa: F401  (the fixture gw)
    bind,
    code_login,
    last_code,
    request_code,
    sms_gateway,
    sms_login,
)

PHONE = "13800138000"
E164 = "+8613800138000"
BIND_PHONE_NUMBER = """
mutation($code: String!) { bindPhoneNumber(input: {code: $code}) { __typename
  ... on Error { code } } }"""


@pytest.fixture
async def roomy(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    """Per-number limits out of the way, for tests that send several codes to one number."""
    limits = {"provider": "sandbox", "per_phone_minute": 20, "per_phone_hour": 20}
    async with running(configure(database_url, sms=limits)) as harness:
        yield harness


def phones(account: dict[str, Any]) -> list[str]:
    return [i["label"] for i in account["identities"] if i["kind"] == "PHONE"]


async def test_request_read_and_log_in_signs_up_then_logs_in(roomy: Harness) -> None:
    first = await code_login(roomy, PHONE)
    assert first["__typename"] == "LoginSuccess", first
    assert first["isNewAccount"] is True
    assert phones(first["account"])[0].endswith("8000")

    again = await code_login(roomy, "+86 138-0013-8000")  # another spelling, one number
    assert again["__typename"] == "LoginSuccess", again
    assert (again["isNewAccount"], again["account"]["id"]) == (False, first["account"]["id"])


async def test_a_sent_code_is_audited_with_the_client_and_without_the_number(
    gw: Harness,
) -> None:
    document = """mutation($phone: String!) { requestSmsCode(input: {phone: $phone,
      purpose: BIND, app: "shop-mp", client: {platform: "ios", channel: "store"}}) {
      __typename } }"""
    body = await gw.gql(document, {"phone": PHONE})
    assert body["data"]["requestSmsCode"]["__typename"] == "RequestSmsCodeSuccess", body
    [event] = await audit_events(gw, "sms_code_issued")
    assert (event.platform, event.channel, event.app_key) == ("ios", "store", "shop-mp")
    assert event.ip is not None
    assert event.user_agent is not None
    assert event.detail == {"purpose": "bind", "country": "+86", "phone_tail": "8000"}
    assert "13800138000" not in repr(event.model_dump())


async def test_a_code_is_single_use(gw: Harness) -> None:
    await request_code(gw, PHONE)
    code = await last_code(gw.client, PHONE)
    assert (await sms_login(gw, PHONE, code))["__typename"] == "LoginSuccess"
    used = await sms_login(gw, PHONE, code)
    assert used["code"] == "INVALID_CODE"


async def test_a_second_request_within_a_minute_is_rate_limited(gw: Harness) -> None:
    assert (await request_code(gw, PHONE))["__typename"] == "RequestSmsCodeSuccess"
    second = await request_code(gw, PHONE)
    assert second["code"] == "RATE_LIMITED", second
    assert 0 < second["retryAfterSeconds"] <= 60


async def test_five_wrong_codes_kill_the_code(gw: Harness) -> None:
    await request_code(gw, PHONE)
    code = await last_code(gw.client, PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert (await sms_login(gw, PHONE, wrong))["code"] == "INVALID_CODE"
    dead = await sms_login(gw, PHONE, code)
    assert dead["code"] == "INVALID_CODE", dead


async def test_a_code_for_binding_does_not_log_in(gw: Harness) -> None:
    await request_code(gw, PHONE, "BIND")
    code = await last_code(gw.client, PHONE)
    assert (await sms_login(gw, PHONE, code))["code"] == "INVALID_CODE"


@pytest.mark.parametrize("phone", ["+1 650 253 0000", "+44 20 7946 0958"])
async def test_other_countries_are_refused_by_default(gw: Harness, phone: str) -> None:
    refused = await request_code(gw, phone)
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "phone"), refused
    assert "+1" in refused["message"] or "+44" in refused["message"]


@pytest.mark.parametrize("phone", ["not a number", "12345", "", "+86 1"])
async def test_an_unparsable_number_is_invalid_input_naming_the_field(
    gw: Harness, phone: str
) -> None:
    refused = await request_code(gw, phone)
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "phone"), refused
    login = await sms_login(gw, phone, "123456")
    assert (login["code"], login["field"]) == ("INVALID_INPUT", "phone"), login


async def test_the_answer_is_the_same_for_known_and_unknown_numbers(gw: Harness) -> None:
    known = await code_login(gw, PHONE)
    assert known["__typename"] == "LoginSuccess"
    for phone in ("13800138001", "13900139000"):  # (13800138000 holds its minute)
        sent = await request_code(gw, phone)
        assert sent == {"__typename": "RequestSmsCodeSuccess", "sent": True}
    wechat = await gw.login("shop-mp", "amy")
    await _bind_by_button(gw, wechat["accessToken"], "amy", "13700137000")
    assert await request_code(gw, "13700137000") == await request_code(gw, "13600136000")


async def _bind_by_button(gw: Harness, token: str, user: str, phone: str) -> None:
    answer = await gw.upstream.post(
        "/sandbox/phone-codes", json={"appid": gw.appid("shop-mp"), "user": user, "phone": phone}
    )
    body = await gw.gql(BIND_PHONE_NUMBER, {"code": answer.json()["code"]}, token=token)
    assert body["data"]["bindPhoneNumber"]["__typename"] == "BindPhoneNumberSuccess", body


async def test_the_phone_button_and_sms_reach_one_account(gw: Harness) -> None:
    wechat = await gw.login("shop-mp", "amy")
    await _bind_by_button(gw, wechat["accessToken"], "amy", PHONE)

    by_sms = await code_login(gw, PHONE)

    assert by_sms["__typename"] == "LoginSuccess", by_sms
    assert (by_sms["isNewAccount"], by_sms["account"]["id"]) == (False, wechat["account"]["id"])


async def test_a_phone_on_another_account_is_a_conflict_at_binding(roomy: Harness) -> None:
    owner = await code_login(roomy, PHONE)
    bob = await roomy.login("shop-mp", "bob")
    await request_code(roomy, PHONE, "BIND")

    conflict = await bind(roomy, bob["accessToken"], PHONE, await last_code(roomy.client, PHONE))

    assert conflict["code"] == "PHONE_CONFLICT", conflict
    again = await code_login(roomy, PHONE)  # the owner keeps the number
    assert again["account"]["id"] == owner["account"]["id"]
    await request_code(roomy, "13900139000", "BIND")
    code = await last_code(roomy.client, "13900139000")
    mine = await bind(roomy, bob["accessToken"], "13900139000", code)
    assert (mine["__typename"], mine["linked"]) == ("BindPhoneBySmsSuccess", True), mine
    assert mine["account"]["id"] == bob["account"]["id"]
    assert phones(mine["account"])[0].endswith("9000")


async def test_binding_needs_a_login(gw: Harness) -> None:
    body = await gw.gql(
        'mutation { bindPhoneBySms(input: {phone: "13800138000", code: "123456"}) '
        "{ __typename ... on Error { code } } }"
    )
    assert body["data"]["bindPhoneBySms"]["code"] == "NOT_LOGGED_IN"


async def test_a_provider_outage_is_upstream_unavailable_with_a_retry(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(message: SmsMessage) -> None:
        raise SmsUnavailable("timeout", retry_after=30)

    monkeypatch.setattr(gw.app.state.services.sandbox_sms, "send", down)
    refused = await request_code(gw, PHONE)
    assert (refused["code"], refused["retryAfterSeconds"]) == ("UPSTREAM_UNAVAILABLE", 30)


async def test_without_a_provider_no_sms_is_sent(database_url: str, configure: Configure) -> None:
    async with running(configure(database_url)) as plain:
        refused = await request_code(plain, PHONE)
        assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "phone")
        assert (await plain.client.get("/sandbox/sms", params={"phone": PHONE})).status_code == 404


async def test_sign_up_off_refuses_an_unknown_number(
    database_url: str, configure: Configure
) -> None:
    config = configure(database_url, sms={"provider": "sandbox", "signup": False})
    async with running(config) as closed:
        refused = await code_login(closed, PHONE)
        assert refused["code"] == "INVALID_CREDENTIALS", refused


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("gateway_sms_codes_total", {"result": result}) or 0.0


async def test_the_hourly_budget_warns_at_80_percent_then_refuses(
    database_url: str, configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    config = configure(database_url, sms={"provider": "sandbox", "hourly_budget": 5})
    sent, budget = counted("sent"), counted("budget")
    async with running(config) as small:
        for n in range(5):
            answer = await request_code(small, f"1380013800{n}")
            assert answer["__typename"] == "RequestSmsCodeSuccess", answer
        over = await request_code(small, "13800138009")
    assert over["code"] == "RATE_LIMITED", over
    assert over["retryAfterSeconds"] > 0
    (warning,) = [r for r in caplog.records if "budget" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert "80%" in warning.getMessage()
    assert (counted("sent") - sent, counted("budget") - budget) == (5, 1)


async def test_refusals_are_counted_by_reason(gw: Harness) -> None:
    before = {reason: counted(reason) for reason in ("phone", "country")}
    await request_code(gw, PHONE)
    await request_code(gw, PHONE)
    await request_code(gw, "+1 650 253 0000")
    assert {reason: counted(reason) - n for reason, n in before.items()} == {
        "phone": 1,
        "country": 1,
    }


CLOUD_TABLES = {
    "aliyun": {"sign_name": "Demo", "template_code": "SMS_1", "access_key_id_env": "TEST_SMS_ID",
               "access_key_secret_env": "TEST_SMS_KEY"},
    "tencent": {"sdk_app_id": "1400000000", "sign_name": "Demo", "template_id": "1",
                "secret_id_env": "TEST_SMS_ID", "secret_key_env": "TEST_SMS_KEY"},
}  # fmt: skip


@pytest.mark.parametrize("name", ["aliyun", "tencent"])
async def test_a_cloud_provider_unreachable_answers_upstream_unavailable(
    database_url: str, configure: Configure, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configured adapter, through the real route: its provider refusing connections (a
    closed local port) is a typed outage with a wait, never a 500."""
    monkeypatch.setenv("TEST_SMS_ID", "id-0123456789")
    monkeypatch.setenv("TEST_SMS_KEY", "key-0123456789")
    monkeypatch.setenv(f"GATEWAY_SMS_{name.upper()}_BASE", f"http://127.0.0.1:{free_port()}")
    sms = {"provider": name, name: CLOUD_TABLES[name]}
    async with running(configure(database_url, sms=sms)) as gw:
        refused = await request_code(gw, PHONE)
    assert refused["code"] == "UPSTREAM_UNAVAILABLE", refused
    assert refused["retryAfterSeconds"] > 0


@pytest.mark.parametrize("name", ["aliyun", "tencent"])
async def test_a_cloud_provider_without_its_keys_stops_start_up(
    database_url: str, configure: Configure, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_SMS_KEY", raising=False)
    monkeypatch.setenv("TEST_SMS_ID", "id-0123456789")
    sms = {"provider": name, name: CLOUD_TABLES[name]}
    with pytest.raises(ConfigError, match="TEST_SMS_KEY"):
        async with running(configure(database_url, sms=sms)):
            pass


class Refusing:
    """A captcha check (``gateway.sms.captcha.CaptchaCheck``) that wants the ticket "solved"."""

    async def passed(self, ticket: str | None, client: ClientInfo) -> bool:
        return ticket == "solved"


async def test_the_captcha_hook_is_asked_before_sending(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.app.state.services.api.sms, "_captcha", Refusing())
    refused = await request_code(gw, PHONE)
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "captcha_ticket")
    assert (await gw.client.get("/sandbox/sms", params={"phone": PHONE})).json()["messages"] == []
    body = await gw.gql(
        'mutation { requestSmsCode(input: {phone: "13800138000", purpose: LOGIN, app: "shop-mp",'
        ' captchaTicket: "solved"}) { __typename } }'
    )
    assert body["data"]["requestSmsCode"]["__typename"] == "RequestSmsCodeSuccess"


async def test_the_allow_list_lets_other_countries_in(
    database_url: str, configure: Configure
) -> None:
    config = configure(database_url, sms={"provider": "sandbox", "countries": ["+86", "+1"]})
    async with running(config) as wide:
        sent = await request_code(wide, "+1 650 253 0000")
        assert sent["__typename"] == "RequestSmsCodeSuccess", sent
        assert await last_code(wide.client, "+16502530000")


def test_a_calling_code_must_look_like_one(database_url: str, configure: Configure) -> None:
    with pytest.raises(ConfigError, match="countries"):
        configure(database_url, sms={"countries": ["86"]})


async def test_one_client_address_gets_so_many_codes_an_hour(
    database_url: str, configure: Configure
) -> None:
    config = configure(database_url, sms={"provider": "sandbox", "per_address_hour": 2})
    before = counted("address")
    async with running(config) as narrow:
        for phone in ("13800138000", "13800138001"):
            assert (await request_code(narrow, phone))["__typename"] == "RequestSmsCodeSuccess"
        third = await request_code(narrow, "13800138002")
    assert third["code"] == "RATE_LIMITED", third
    assert 0 < third["retryAfterSeconds"] <= 3600
    assert counted("address") - before == 1
