"""PostgreSQL going away under a running gateway (a restart, a failover): requests fail cleanly
with a retryable UNAVAILABLE, /readyz says 503, and the gateway recovers by itself.

The "restart" is a TCP proxy between the gateway and PostgreSQL that the test cuts and
restores: real connections really break, without stopping the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from tests.support.harness import PG_URL, Harness, MakeConfig, running, skip_or_fail
from tests.support.proxy import Proxy

VIEWER = "{ viewer { id } }"


@pytest.fixture
async def proxied(
    make_config: MakeConfig, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Harness, Proxy]]:
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    url = make_url(request.getfixturevalue("pg_migrated"))
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    config = make_config(url.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    async with running(config) as gw:
        yield gw, proxy
    with contextlib.suppress(Exception):
        await proxy.cut()


async def test_database_restart_fails_cleanly_and_recovers(
    proxied: tuple[Harness, Proxy],
) -> None:
    gw, proxy = proxied
    login = await gw.login("shop-mp", "alice")
    token = login["accessToken"]
    # several pooled connections, all of which the "restart" will break
    warm = await asyncio.gather(*(gw.gql(VIEWER, token=token) for _ in range(8)))
    assert all(b["data"]["viewer"]["id"] for b in warm)

    await proxy.cut()
    body = await gw.gql(VIEWER, token=token)
    assert body["data"] == {"viewer": None}
    assert body["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}
    assert "postgres" not in str(body).lower()
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 503

    await proxy.start()  # same port: PostgreSQL is back
    assert (await gw.client.get("/readyz")).status_code == 200
    after = await asyncio.gather(*(gw.gql(VIEWER, token=token) for _ in range(8)))
    assert [b["data"]["viewer"]["id"] for b in after] == [login["account"]["id"]] * 8
    again = await gw.login("shop-mp", "alice")
    assert again["account"]["id"] == login["account"]["id"]
