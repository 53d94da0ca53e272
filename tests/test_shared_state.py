"""Several gateway instances on one database and one Redis share what they must: the code
single-flight and its result cache, and the password throttle. (Two app instances in one
process here; tests/test_processes.py does it with real processes.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from tests.support.harness import LOGIN, Harness, MakeConfig, running, sandbox_for


@pytest.fixture
async def pair(
    database_url: str, redis_url: str, make_config: MakeConfig
) -> AsyncIterator[tuple[Harness, Harness]]:
    config = make_config(database_url, redis_url=redis_url)
    upstream = sandbox_for(config)  # one WeChat for both instances
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(running(config, upstream_app=upstream))
        second = await stack.enter_async_context(running(config, upstream_app=upstream))
        yield first, second


async def test_a_code_retried_on_another_instance_gets_the_first_result(
    pair: tuple[Harness, Harness],
) -> None:
    one, two = pair
    code = await one.mint("shop-mp", "alice")
    variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
    bodies = await asyncio.gather(
        *(gw.gql(LOGIN, variables) for gw in (one, two, one, two, two, one))
    )
    late = await two.gql(LOGIN, variables)
    results = [b["data"]["loginByCode"] for b in [*bodies, late]]
    assert {r["__typename"] for r in results} == {"LoginSuccess"}, results
    assert len({r["account"]["id"] for r in results}) == 1
    assert await one.upstream_calls("/sns/jscode2session") == 1


async def test_a_final_wechat_verdict_is_shared_but_not_refetched(
    pair: tuple[Harness, Harness],
) -> None:
    one, two = pair
    code = await one.mint("shop-mp", "bob", errcode=40226)
    variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
    first = (await one.gql(LOGIN, variables))["data"]["loginByCode"]
    second = (await two.gql(LOGIN, variables))["data"]["loginByCode"]
    assert first["code"] == second["code"] == "RISK_BLOCKED"
    assert await one.upstream_calls("/sns/jscode2session") == 1


async def test_redis_down_degrades_to_per_instance_exchange(
    database_url: str, make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(database_url, redis_url="redis://127.0.0.1:1/0")
    async with running(config) as gw:
        for user in ("carol", "dave"):
            login = await gw.login("shop-mp", user)
            assert login["isNewAccount"] is True
    warnings = [r for r in caplog.records if "code single-flight" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not per request


CHECK = "{ checkSession { valid wechatSessionValid } }"


async def test_one_app_token_refresh_across_instances(pair: tuple[Harness, Harness]) -> None:
    one, two = pair
    tokens = [
        (await gw.login("shop-mp", f"user{i}"))["accessToken"]
        for i, gw in enumerate((one, two, one, two))
    ]
    bodies = await asyncio.gather(
        *(gw.gql(CHECK, token=t) for gw, t in zip((one, two, one, two), tokens, strict=True))
    )
    assert [b["data"]["checkSession"] for b in bodies] == [
        {"valid": True, "wechatSessionValid": True}
    ] * 4
    assert await one.upstream_calls("/cgi-bin/stable_token") == 1
    assert await one.upstream_calls("/wxa/checksession") == 4
