"""PostgreSQL going away under a running gateway (a restart, a failover): requests fail cleanly
with a retryable UNAVAILABLE, /readyz says 503, and the gateway recovers by itself.

The "restart" is a TCP proxy between the gateway and PostgreSQL that the test cuts and
restores: real connections really break, without stopping the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, Harness, _skip_or_fail, running

VIEWER = "{ viewer { id } }"


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._pipes):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


@pytest.fixture
async def proxied(
    make_config: Any, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Harness, Proxy]]:
    if not PG_URL:
        _skip_or_fail("PostgreSQL")
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
