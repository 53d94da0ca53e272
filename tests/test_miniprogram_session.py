"""A logged-in mini-program user's WeChat session: checkSession, bindPhoneNumber, the app's
access token behind them (one owner, refresh once and retry once), and the session_key rule:
never in a response, a token or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from gateway.accounts.tables import Identity, WechatSession
from gateway.api.errors import graphql_type
from gateway.store.models import AuditEvent
from gateway.wechat.app_token import AppTokens
from gateway.wechat.client import WeChatClient
from gateway.wechat.errors import ERRCODES
from tests.support.accounts import (
    BIND,
    accounts_in_db,
    count,
    forged,
    identities_in_db,
    merge_events,
    oa_login,
    open_data,
    rotate_at_wechat,
    two_accounts_of_dave,
    variables,
    viewer,
)
from tests.support.harness import Harness, MakeConfig, running, sandbox_for

CHECK = "{ checkSession { valid expiresAt wechatSessionValid app { key kind } } }"

PHONE = """
mutation($code: String!) {
  bindPhoneNumber(input: {code: $code, client: {platform: "ios"}}) {
    __typename
    ... on BindPhoneNumberSuccess { linked account { id identities { kind label app { key } } } }
    ... on Error { code message }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""

LOGOUT = "mutation { logout { __typename ... on LogoutSuccess { revokedSessions } } }"
STABLE_TOKEN = "/cgi-bin/stable_token"
CHECKSESSION = "/wxa/checksession"
PHONE_PATH = "/wxa/business/getuserphonenumber"


async def check(gw: Harness, token: str | None) -> dict[str, Any]:
    body = await gw.gql(CHECK, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["checkSession"]
    return result


async def phone_code(gw: Harness, app: str, user: str, phone: str, **extra: Any) -> str:
    answer = await gw.upstream.post(
        "/sandbox/phone-codes",
        json={"appid": gw.appid(app), "user": user, "phone": phone, **extra},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["code"])


async def bind_phone(gw: Harness, token: str | None, code: str) -> dict[str, Any]:
    body = await gw.gql(PHONE, {"code": code}, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["bindPhoneNumber"]
    return result


def phones(account: dict[str, Any]) -> list[str]:
    return [i["label"] for i in account["identities"] if i["kind"] == "PHONE"]


# -- checkSession -----------------------------------------------------------------------------


async def test_check_session_without_a_valid_login(gw: Harness) -> None:
    nothing = {"valid": False, "expiresAt": None, "wechatSessionValid": None, "app": None}
    assert await check(gw, None) == nothing
    assert await gw.refused(CHECK, token="not-a-token") == "INVALID_TOKEN"
    login = await gw.login("shop-mp", "alice")
    logout = await gw.gql(LOGOUT, token=login["accessToken"])
    assert logout["data"]["logout"] == {"__typename": "LogoutSuccess", "revokedSessions": 1}
    assert await gw.refused(CHECK, token=login["accessToken"]) == "INVALID_TOKEN"
    assert await gw.upstream_calls(CHECKSESSION) == 0


async def test_check_session_follows_the_session_key_at_wechat(gw: Harness) -> None:
    login = await gw.login("shop-mp", "bob")
    fresh = await check(gw, login["accessToken"])
    assert fresh["valid"] is True
    assert fresh["wechatSessionValid"] is True
    assert fresh["app"] == {"key": "shop-mp", "kind": "MINIPROGRAM"}
    assert fresh["expiresAt"]

    await rotate_at_wechat(gw, "shop-mp", "bob")  # wx.login again, the gateway never told
    stale = await check(gw, login["accessToken"])
    assert (stale["valid"], stale["wechatSessionValid"]) == (True, False)

    again = await gw.login("shop-mp", "bob")
    assert (await check(gw, again["accessToken"]))["wechatSessionValid"] is True
    assert await gw.upstream_calls(CHECKSESSION) == 3


async def test_check_session_for_an_official_account_login_knows_no_wechat_session(
    gw: Harness,
) -> None:
    login = await oa_login(gw, "cara")
    result = await check(gw, login["accessToken"])
    assert result["valid"] is True
    assert result["wechatSessionValid"] is None
    assert result["app"] == {"key": "news-oa", "kind": "OFFICIAL_ACCOUNT"}
    assert await gw.upstream_calls(CHECKSESSION) == 0


async def test_a_merged_accounts_miniprogram_session_still_checks_out(gw: Harness) -> None:
    older, newer = await two_accounts_of_dave(gw, oa_first=True)  # newer: the shop-mp login
    await oa_login(gw, "dave")  # proves they are one person: newer is merged into older
    result = await check(gw, newer["accessToken"])
    assert (result["valid"], result["wechatSessionValid"]) == (True, True)
    assert (await viewer(gw, newer["accessToken"]))["id"] == older["account"]["id"]


# -- the app access token ---------------------------------------------------------------------


async def test_concurrent_checks_share_one_app_token_per_app(gw: Harness) -> None:
    tokens = [
        (await gw.login(app, f"user{i}"))["accessToken"]
        for app in ("shop-mp", "club-mp")
        for i in range(5)
    ]
    assert await gw.upstream_calls(STABLE_TOKEN) == 0  # code2session needs no app token
    results = await asyncio.gather(*(check(gw, token) for token in tokens * 2))
    assert {r["wechatSessionValid"] for r in results} == {True}
    assert await gw.upstream_calls(STABLE_TOKEN) == 2  # one for shop-mp, one for club-mp
    assert await gw.upstream_calls(CHECKSESSION) == 20
    await asyncio.gather(*(check(gw, token) for token in tokens))
    assert await gw.upstream_calls(STABLE_TOKEN) == 2


class HeldTokens(httpx.AsyncBaseTransport):
    """The emulator, with ``stable_token`` answers held until the test releases them."""

    def __init__(self, upstream_app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=upstream_app)
        self.asked = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.path] += 1
        if request.url.path == STABLE_TOKEN:
            self.asked.set()
            await self.release.wait()
        return await self._inner.handle_async_request(request)


async def test_callers_queued_behind_a_refresh_reuse_its_token(make_config: MakeConfig) -> None:
    """The token owner itself, made deterministic: every caller is already queued on the
    refresh when WeChat answers, so a missing re-check under the lock would fetch again."""
    config = make_config("sqlite+aiosqlite:///unused.db")
    held = HeldTokens(sandbox_for(config))
    shop = config.app("shop-mp")
    assert shop is not None
    async with httpx.AsyncClient(base_url="http://wechat.test", transport=held) as http:
        owner = AppTokens(WeChatClient(http))

        async def release() -> str:
            await held.asked.wait()
            held.release.set()
            return ""

        values = await asyncio.gather(*(owner.get(shop) for _ in range(8)), release())
    assert held.calls[STABLE_TOKEN] == 1
    assert len(set(values[:8])) == 1
    assert values[0]


async def test_a_token_another_holder_replaced_is_refreshed_once(gw: Harness) -> None:
    login = await gw.login("shop-mp", "emma")
    assert (await check(gw, login["accessToken"]))["wechatSessionValid"] is True
    shop = gw.config.app("shop-mp")
    assert shop is not None
    # someone else forces a new token: WeChat now answers 40001 to the gateway's cached one
    killed = await gw.upstream.post(
        STABLE_TOKEN,
        json={
            "grant_type": "client_credential",
            "appid": shop.appid,
            "secret": shop.secret.get_secret_value(),
            "force_refresh": True,
        },
    )
    assert "access_token" in killed.json()
    assert (await check(gw, login["accessToken"]))["wechatSessionValid"] is True
    assert await gw.upstream_calls(STABLE_TOKEN) == 1 + 1 + 1  # gateway, intruder, refresh
    assert await gw.upstream_calls(CHECKSESSION) == 1 + 2  # first, 40001, retry
    assert (await check(gw, login["accessToken"]))["wechatSessionValid"] is True
    assert await gw.upstream_calls(STABLE_TOKEN) == 3


async def test_an_expired_app_token_is_refreshed_once(gw: Harness) -> None:
    login = await gw.login("shop-mp", "fay")
    await check(gw, login["accessToken"])
    await gw.upstream.post("/sandbox/clock", json={"advance": 7200})  # 42001 from now on
    assert (await check(gw, login["accessToken"]))["wechatSessionValid"] is True
    assert await gw.upstream_calls(STABLE_TOKEN) == 2
    assert await gw.upstream_calls(CHECKSESSION) == 3


class StaleTokenInjector(httpx.AsyncBaseTransport):
    """The emulator behind a switch that answers the next ``fail[path]`` calls with 40001,
    as WeChat does for an app token it no longer accepts; counts every call it sees."""

    def __init__(self, upstream_app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=upstream_app)
        self.fail: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls[path] += 1
        if self.fail[path] > 0:
            self.fail[path] -= 1
            return httpx.Response(200, json={"errcode": 40001, "errmsg": "invalid credential"})
        return await self._inner.handle_async_request(request)


@dataclass
class Injected:
    gw: Harness
    wechat: StaleTokenInjector


@pytest.fixture
async def injected(database_url: str, make_config: MakeConfig) -> AsyncIterator[Injected]:
    config = make_config(database_url)
    sandbox = sandbox_for(config)
    wechat = StaleTokenInjector(sandbox)
    async with running(config, upstream_app=sandbox, transport=wechat) as gw:
        yield Injected(gw, wechat)


async def test_one_40001_means_one_refresh_and_one_retry(injected: Injected) -> None:
    gw, wechat = injected.gw, injected.wechat
    login = await gw.login("shop-mp", "gus")
    await check(gw, login["accessToken"])
    assert (wechat.calls[STABLE_TOKEN], wechat.calls[CHECKSESSION]) == (1, 1)

    wechat.fail[CHECKSESSION] = 1
    assert (await check(gw, login["accessToken"]))["wechatSessionValid"] is True
    assert (wechat.calls[STABLE_TOKEN], wechat.calls[CHECKSESSION]) == (2, 3)

    wechat.fail[CHECKSESSION] = 5  # WeChat keeps refusing: one retry, then "unknown"
    result = await check(gw, login["accessToken"])
    assert (result["valid"], result["wechatSessionValid"]) == (True, None)
    assert (wechat.calls[STABLE_TOKEN], wechat.calls[CHECKSESSION]) == (3, 5)

    wechat.fail[CHECKSESSION] = 0
    wechat.fail[PHONE_PATH] = 1
    code = await phone_code(gw, "shop-mp", "gus", "13900001111")
    result = await bind_phone(gw, login["accessToken"], code)
    assert (result["__typename"], result["linked"]) == ("BindPhoneNumberSuccess", True)
    assert wechat.calls[PHONE_PATH] == 2

    wechat.fail[PHONE_PATH] = 5
    code = await phone_code(gw, "shop-mp", "gus", "13900002222")
    result = await bind_phone(gw, login["accessToken"], code)
    assert (result["__typename"], result["code"]) == ("UpstreamError", "UPSTREAM_ERROR")
    assert wechat.calls[PHONE_PATH] == 4


# -- bindPhoneNumber --------------------------------------------------------------------------


async def test_a_phone_becomes_a_masked_phone_identity(gw: Harness) -> None:
    login = await gw.login("shop-mp", "hana")
    result = await bind_phone(
        gw, login["accessToken"], await phone_code(gw, "shop-mp", "hana", "13800138000")
    )
    assert (result["__typename"], result["linked"]) == ("BindPhoneNumberSuccess", True)
    assert result["account"]["id"] == login["account"]["id"]
    (label,) = phones(result["account"])
    assert label.endswith("8000")
    assert "*" in label
    assert "800138" not in label
    assert "13800138000" not in json.dumps(result)
    stored = [
        (i.kind, i.subject, i.app_key) for i in await identities_in_db(gw) if i.kind == "phone"
    ]
    assert stored == [("phone", "+8613800138000", "shop-mp")]

    again = await bind_phone(
        gw, login["accessToken"], await phone_code(gw, "shop-mp", "hana", "13800138000")
    )
    assert (again["__typename"], again["linked"]) == ("BindPhoneNumberSuccess", False)
    assert len(phones(again["account"])) == 1

    # through another door, the same account shows the phone
    club = await gw.login("club-mp", "hana")
    assert phones(await viewer(gw, club["accessToken"])) == [label]


async def test_a_phone_keeps_its_country_code(gw: Harness) -> None:
    login = await gw.login("shop-mp", "ian")
    code = await phone_code(gw, "shop-mp", "ian", "2025550123", country_code="1")
    assert (await bind_phone(gw, login["accessToken"], code))["linked"] is True
    stored = [i.subject for i in await identities_in_db(gw) if i.kind == "phone"]
    assert stored == ["+12025550123"]


async def test_a_phone_on_another_account_is_a_conflict_and_merges_nothing(gw: Harness) -> None:
    jo = await gw.login("shop-mp", "jo")
    assert (
        await bind_phone(
            gw, jo["accessToken"], await phone_code(gw, "shop-mp", "jo", "13700000001")
        )
    )["linked"]
    kim = await gw.login("shop-mp", "kim")
    solo_jo = await gw.login("solo-mp", "jo")  # the same person outside the open platform
    identities_before = {(i.kind, i.subject, i.account_id) for i in await identities_in_db(gw)}

    for token, app, user in (
        (kim["accessToken"], "shop-mp", "kim"),
        (solo_jo["accessToken"], "solo-mp", "jo"),
    ):
        code = await phone_code(gw, app, user, "13700000001")
        result = await bind_phone(gw, token, code)
        assert (result["__typename"], result["code"]) == ("ConflictError", "PHONE_CONFLICT")
        assert result["message"]
        assert "13700000001" not in result["message"]

    assert {
        (i.kind, i.subject, i.account_id) for i in await identities_in_db(gw)
    } == identities_before
    assert {a.status for a in (await accounts_in_db(gw)).values()} == {"active"}
    assert await count(gw, Identity, Identity.kind == "phone") == 1
    assert await merge_events(gw) == []
    assert phones(await viewer(gw, kim["accessToken"])) == []
    assert (await viewer(gw, solo_jo["accessToken"]))["id"] != jo["account"]["id"]


async def test_phone_code_refusals_are_typed(gw: Harness) -> None:
    login = await gw.login("shop-mp", "lou")
    for errcode, typename, code in [
        (40029, "CodeRejectedError", "INVALID_CODE"),
        (45011, "RateLimitedError", "RATE_LIMITED"),
    ]:
        minted = await phone_code(gw, "shop-mp", "lou", "13600000000", errcode=errcode)
        result = await bind_phone(gw, login["accessToken"], minted)
        assert (result["__typename"], result["code"]) == (typename, code)
    assert await count(gw, Identity, Identity.kind == "phone") == 0


async def test_wechat_risk_control_on_a_phone_code_is_a_typed_answer(gw: Harness) -> None:
    """40226 used to escape as "Internal server error." (its type was not in the union)."""
    login = await gw.login("shop-mp", "ria")
    minted = await phone_code(gw, "shop-mp", "ria", "13600000001", errcode=40226)
    result = await bind_phone(gw, login["accessToken"], minted)
    assert (result["__typename"], result["code"]) == ("LoginBlockedError", "RISK_BLOCKED")
    assert "risk control" in result["message"]


@pytest.mark.parametrize(
    ("errcode", "typename", "code"),
    [(e, graphql_type(m.error).__name__, m.error.code) for e, m in sorted(ERRCODES.items())]
    + [(99999, "UpstreamError", "UPSTREAM_ERROR")],
)
async def test_every_errcode_of_a_phone_code_is_typed(
    gw: Harness, errcode: int, typename: str, code: str
) -> None:
    login = await gw.login("shop-mp", "eve")
    minted = await phone_code(gw, "shop-mp", "eve", "13600000002", errcode=errcode)
    result = await bind_phone(gw, login["accessToken"], minted)
    assert (result["__typename"], result["code"]) == (typename, code)


async def test_phone_codes_are_single_use_and_per_app(gw: Harness) -> None:
    login = await gw.login("shop-mp", "max")
    busy = await phone_code(gw, "shop-mp", "max", "13500000000", errcode=-1, fail_times=1)
    assert (await bind_phone(gw, login["accessToken"], busy))["linked"] is True  # -1 retried
    used = await bind_phone(gw, login["accessToken"], busy)
    assert (used["__typename"], used["code"]) == ("CodeRejectedError", "INVALID_CODE")
    foreign = await phone_code(gw, "club-mp", "max", "13500000009")
    result = await bind_phone(gw, login["accessToken"], foreign)
    assert (result["__typename"], result["code"]) == ("CodeRejectedError", "INVALID_CODE")
    assert await count(gw, Identity, Identity.kind == "phone") == 1


async def test_bind_phone_needs_a_miniprogram_login(gw: Harness) -> None:
    code = await phone_code(gw, "shop-mp", "ned", "13400000000")
    result = await bind_phone(gw, None, code)
    assert (result["__typename"], result["code"]) == ("NotAuthenticatedError", "NOT_LOGGED_IN")
    oa = await oa_login(gw, "ned")
    result = await bind_phone(gw, oa["accessToken"], code)
    assert (result["__typename"], result["code"]) == ("UnknownAppError", "UNSUPPORTED_APP_KIND")
    shop = await gw.login("shop-mp", "ned")
    bad = await bind_phone(gw, shop["accessToken"], "bad code")
    assert (bad["__typename"], bad["code"]) == ("InvalidInputError", "INVALID_INPUT")
    assert await gw.upstream_calls(PHONE_PATH) == 0
    assert (await bind_phone(gw, shop["accessToken"], code))["linked"] is True


# -- the session_key never leaves the server --------------------------------------------------


def _jwt_payloads(text: str) -> str:
    """Decoded payloads of every JWT-looking string in ``text``."""
    decoded = []
    for word in text.replace('"', " ").split():
        parts = word.split(".")
        if len(parts) == 3 and parts[0].startswith("eyJ"):
            decoded.append(base64.urlsafe_b64decode(parts[1] + "==").decode())
    return "\n".join(decoded)


async def test_no_session_key_in_any_response_token_or_log_line(
    gw: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("gateway", "httpx", "httpcore", "sqlalchemy.engine"):
        caplog.set_level(logging.DEBUG, logger=name)
    keys: set[str] = set()
    responses: list[str] = []

    async def remember(app: str, user: str) -> None:
        key = (await gw.wechat_ids(app, user))["session_key"]
        assert key
        keys.add(key)

    async def call(
        query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        body = await gw.gql(query, variables, token=token)
        responses.append(json.dumps(body, ensure_ascii=False))
        return body

    shop = await gw.login("shop-mp", "olga")
    responses.append(json.dumps(shop))
    await remember("shop-mp", "olga")
    club = await gw.login("club-mp", "olga")
    responses.append(json.dumps(club))
    await remember("club-mp", "olga")
    token = shop["accessToken"]

    good = await open_data(gw, "shop-mp", "olga")
    assert (await call(BIND, variables(good), token))["data"]["bindUnionId"]["linked"] is False
    await call(BIND, {**variables(good), "sig": "0" * 40}, token)
    await call(BIND, variables(await forged(gw, "shop-mp", "olga", openId="o-someone-else")), token)
    await call(BIND, {**variables(good), "data": base64.b64encode(b"x" * 32).decode()}, token)
    assert (await call(CHECK, token=token))["data"]["checkSession"]["wechatSessionValid"] is True

    await rotate_at_wechat(gw, "shop-mp", "olga")
    await remember("shop-mp", "olga")
    assert (await call(CHECK, token=token))["data"]["checkSession"]["wechatSessionValid"] is False
    stale = await call(BIND, variables(await open_data(gw, "shop-mp", "olga")), token)
    assert stale["data"]["bindUnionId"]["code"] == "SESSION_EXPIRED"
    code = await phone_code(gw, "shop-mp", "olga", "13300000000")
    await call(PHONE, {"code": code}, token)
    await call("{ viewer { id identities { kind label } } }", token=club["accessToken"])

    assert len(keys) == 3
    text = "\n".join(responses)
    logs = caplog.text + "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "wechat" in logs.lower()  # the capture did see the gateway at work
    tokens = _jwt_payloads(text)
    assert tokens
    async with gw.app.state.services.db.reader() as s:
        sealed = [w.session_key_sealed for w in (await s.execute(select(WechatSession))).scalars()]
        audit = [repr(e.detail) for e in (await s.execute(select(AuditEvent))).scalars()]
    assert len(sealed) == 2
    for key in keys:
        for variant in {key, key.replace("+", "-").replace("/", "_"), key.rstrip("=")}:
            assert variant not in text
            assert variant not in tokens
            assert variant not in logs
            assert variant not in "".join(sealed)
            assert variant not in "".join(audit)
