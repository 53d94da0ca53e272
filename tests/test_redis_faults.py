"""Redis going away under a running gateway: each shared use degrades as documented, logs once,
and comes back by itself when Redis does (a cuttable TCP proxy stands in for a Redis restart)."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis

from tests.support.harness import LOGIN, MakeConfig, running
from tests.support.proxy import Proxy

PASSWORD_LOGIN = """mutation { loginWithPassword(input: {username: "nobody", password:
  "wrong-password-1", app: "shop-mp", client: {platform: "web"}}) { __typename ... on Error {
  code } } }"""


async def test_redis_restart_degrades_then_recovers(
    database_url: str, redis_url: str, make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    address, _, db = redis_url.removeprefix("redis://").partition("/")
    host, port = address.split(":")
    proxy = Proxy(host, int(port))
    await proxy.start()
    config = make_config(database_url, redis_url=f"redis://127.0.0.1:{proxy.port}/{db or 0}")
    direct = Redis.from_url(redis_url)
    caplog.set_level(logging.WARNING, logger="gateway.degraded")
    try:
        async with running(config) as gw:
            await gw.login("shop-mp", "before")
            assert [k async for k in direct.scan_iter(match="gw:flight:*")]

            await proxy.cut()
            for user in ("during-1", "during-2"):  # logins keep working, per process
                assert (await gw.login("shop-mp", user))["isNewAccount"] is True
            refused = (await gw.gql(PASSWORD_LOGIN))["data"]["loginWithPassword"]
            assert refused == {"__typename": "UpstreamError", "code": "TEMPORARILY_UNAVAILABLE"}
            down = [r for r in caplog.records if "unavailable" in r.getMessage()]
            assert len([r for r in down if "code single-flight" in r.getMessage()]) == 1

            await proxy.start()  # Redis is back on the same address
            for key in [k async for k in direct.scan_iter(match="gw:flight:*")]:
                await direct.delete(key)
            code = await gw.mint("shop-mp", "after")
            body = await gw.gql(
                LOGIN, {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
            )
            assert body["data"]["loginByCode"]["__typename"] == "LoginSuccess"
            assert [k async for k in direct.scan_iter(match="gw:flight:*")]
            back = (await gw.gql(PASSWORD_LOGIN))["data"]["loginWithPassword"]
            assert back["code"] == "INVALID_CREDENTIALS"
            assert any("is back" in r.getMessage() for r in caplog.records)
    finally:
        await direct.aclose()
        await proxy.cut()
