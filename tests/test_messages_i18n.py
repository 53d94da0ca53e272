"""Messages people read, in the request's language (issue 28, item 4), through GraphQL over
HTTP: the same error in English (the default) and in Chinese with the same ``code``;
``[i18n] default_locale``; a nonsense ``Accept-Language``; the 401 body; the sandbox's SMS
text. The catalogues' completeness is tests/test_i18n_check.py's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.config import ConfigError
from tests.support.harness import Configure, Harness, running
from tests.support.sms import sms_gateway  # noqa: F401  (the fixture gw)

PHONE = "13800138000"
UNKNOWN_APP = """
mutation { loginByCode(input: {app: "no-such-app", code: "c0de", client: {platform: "web"}}) {
  __typename ... on Error { code message } } }"""
REQUEST = """
mutation($phone: String!) { requestSmsCode(input: {phone: $phone, purpose: LOGIN, app: "shop-mp"}) {
  __typename ... on Error { code message } ... on RateLimitedError { retryAfterSeconds } } }"""


@pytest.fixture
async def chinese(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    config = configure(database_url, sms={"provider": "sandbox"}, i18n={"default_locale": "zh-CN"})
    async with running(config) as harness:
        yield harness


async def ask(
    gw: Harness, query: str, language: str | None = None, **variables: Any
) -> dict[str, Any]:
    headers = {"accept-language": language} if language is not None else {}
    response = await gw.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = next(iter(body["data"].values()))
    return result


async def test_the_same_error_in_english_by_default_and_in_chinese_on_request(
    gw: Harness,
) -> None:
    english = await ask(gw, UNKNOWN_APP)
    chinese = await ask(gw, UNKNOWN_APP, "zh-CN,zh;q=0.9")
    assert chinese["code"] == english["code"] == "UNKNOWN_APP"
    assert english["message"] == "No app is configured with key 'no-such-app'."
    assert chinese["message"] == "未配置标识为 'no-such-app' 的应用。"
    assert (await ask(gw, UNKNOWN_APP, "zh-TW, en;q=0.5"))["message"] == chinese["message"]
    assert (await ask(gw, UNKNOWN_APP, "en-US,en;q=0.9"))["message"] == english["message"]


async def test_a_nonsense_accept_language_falls_back_to_the_default(
    gw: Harness, chinese: Harness
) -> None:
    for header in ("klingon", "*", ";;q=x,", "fr-FR, de;q=0.8", "zh;q=0"):
        assert "No app" in (await ask(gw, UNKNOWN_APP, header))["message"], header
    for header in ("klingon", "*", ";;q=x,", "fr-FR, de;q=0.8", "en;q=0"):
        assert "未配置" in (await ask(chinese, UNKNOWN_APP, header))["message"], header


async def test_default_locale_zh_cn_makes_chinese_the_default_and_en_still_wins_when_asked(
    chinese: Harness,
) -> None:
    assert (await ask(chinese, UNKNOWN_APP))["message"].startswith("未配置")
    english = await ask(chinese, UNKNOWN_APP, "en-US,en;q=0.9")
    assert english["code"] == "UNKNOWN_APP"
    assert english["message"].startswith("No app is configured")


def test_the_default_locale_is_english(database_url: str, configure: Configure) -> None:
    assert configure(database_url).i18n.default_locale == "en"


@pytest.mark.parametrize("value", ["zh-CN", "zh_CN", "en"])
def test_default_locale_takes_both_spellings_of_chinese(
    database_url: str, configure: Configure, value: str
) -> None:
    config = configure(database_url, i18n={"default_locale": value})
    assert config.i18n.default_locale == ("en" if value == "en" else "zh-CN")


def test_an_unknown_default_locale_is_a_config_error(
    database_url: str, configure: Configure
) -> None:
    with pytest.raises(ConfigError, match=r"i18n\.default_locale"):
        configure(database_url, i18n={"default_locale": "fr"})


async def test_a_message_with_a_parameter_says_the_wait_in_either_language(gw: Harness) -> None:
    assert (await ask(gw, REQUEST, phone=PHONE))["__typename"] == "RequestSmsCodeSuccess"
    chinese = await ask(gw, REQUEST, "zh-CN", phone=PHONE)
    english = await ask(gw, REQUEST, phone=PHONE)
    assert chinese["code"] == english["code"] == "RATE_LIMITED"
    seconds = chinese["retryAfterSeconds"]
    assert 0 < seconds <= 60
    assert chinese["message"].startswith("该手机号获取验证码过于频繁，请 ")  # noqa: RUF001
    assert chinese["message"].endswith(" 秒后重试。")
    waited = int(chinese["message"].split("请 ")[1].split(" ")[0])
    assert seconds <= waited <= 60
    assert english["message"].startswith("Too many codes for this number; retry in ")


async def test_the_401_body_speaks_the_request_language_and_the_header_stays_ascii(
    gw: Harness,
) -> None:
    answers = {}
    for language in ("zh-CN", "en"):
        answers[language] = await gw.client.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"authorization": "Bearer not-a-token", "accept-language": language},
        )
    zh, en = answers["zh-CN"], answers["en"]
    assert zh.status_code == en.status_code == 401
    assert zh.json()["errors"][0]["extensions"] == en.json()["errors"][0]["extensions"]
    assert zh.json()["errors"][0]["message"].startswith("访问令牌无效")
    assert en.json()["errors"][0]["message"].startswith("The access token is not valid")
    challenge = zh.headers["www-authenticate"]
    assert challenge.isascii()
    assert 'error="invalid_token"' in challenge
    assert challenge == en.headers["www-authenticate"]


async def sandbox_texts(gw: Harness, language: str | None) -> str:
    headers = {"accept-language": language} if language else {}
    response = await gw.client.post(
        "/graphql", json={"query": REQUEST, "variables": {"phone": PHONE}}, headers=headers
    )
    assert response.json()["data"]["requestSmsCode"]["__typename"] == "RequestSmsCodeSuccess"
    messages = (await gw.client.get("/sandbox/sms", params={"phone": PHONE})).json()["messages"]
    text: str = messages[-1]["text"]
    assert messages[-1]["code"] in text
    return text


async def test_the_sandbox_sms_is_in_the_requesters_language(
    database_url: str, configure: Configure
) -> None:
    sms = {"provider": "sandbox", "per_phone_minute": 5}
    async with running(configure(database_url, sms=sms)) as gw:
        chinese = await sandbox_texts(gw, "zh-CN")
        english = await sandbox_texts(gw, None)
    assert chinese.startswith("您的验证码为 ")
    assert "5 分钟内有效" in chinese
    assert english.startswith("Your verification code is ")
    assert "valid for 5 minutes" in english


async def test_the_avatar_upload_refuses_in_the_request_language(gw: Harness) -> None:
    answers = [
        await gw.client.post("/avatars", headers=headers)
        for headers in ({"accept-language": "zh-CN"}, {})
    ]
    assert [a.status_code for a in answers] == [401, 401]
    zh, en = (a.json()["error"] for a in answers)
    assert zh["code"] == en["code"] == "NOT_LOGGED_IN"
    assert zh["message"].startswith("请先登录")
    assert en["message"].startswith("Log in first")
