"""The token cache: token checks answered from memory, never stale after a change commits.

A cached viewer is dropped when its session ends or its account changes (profile included),
in this process at once, and in other processes when they hear the broadcast; when the
broadcast is down every check reads the database, and caching resumes when it is back. The
two-process proofs (Redis, and PostgreSQL's LISTEN/NOTIFY without Redis) are in
``tests/test_revocation_across_processes.py``, one per write path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlmodel import col

from gateway import cli
from gateway.bootstrap import services
from gateway.config import SERVE_WORKERS_ENV
from gateway.metrics import TOKEN_CHECKS
from gateway.rights.service import Operator
from gateway.store.db import Database, create_engine
from gateway.store.models import LoginSession, utcnow
from tests.support.accounts import account_uuid, oa_login
from tests.support.harness import Harness, MakeConfig, running
from tests.support.proxy import Proxy

VIEWER = "{ viewer { id nickname } }"
DEADLINE = 3.0  # well under the cache's max age (5 s): only an invalidation explains a refusal


def cache_hits() -> float:
    return float(TOKEN_CHECKS.labels("cache")._value.get())


async def cached(gw: Harness, token: str) -> dict[str, Any]:
    """Ask until the answer came from the cache (the channel may still be subscribing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        before = cache_hits()
        body = await gw.gql(VIEWER, token=token)
        if cache_hits() > before:
            viewer: dict[str, Any] = body["data"]["viewer"]
            return viewer
        assert loop.time() < deadline, "the token check never came from the cache"
        await asyncio.sleep(0.02)


async def refused_soon(gw: Harness, token: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while await gw.viewer_id(token) is not None:
        assert loop.time() < deadline, "the token is still accepted"


async def test_a_cached_viewer_never_shows_a_stale_profile(gw: Harness) -> None:
    first = await oa_login(gw, "pia", scope="snsapi_base")  # no profile yet
    assert (await cached(gw, first["accessToken"]))["nickname"] is None
    await oa_login(gw, "pia")  # snsapi_userinfo: the profile is stored
    body = await gw.gql(VIEWER, token=first["accessToken"])
    assert body["data"]["viewer"]["nickname"] == "pia"  # at once, in this process


async def test_logout_and_revocations_are_refused_at_once_even_when_cached(gw: Harness) -> None:
    one = await gw.login("shop-mp", "rhea")
    await cached(gw, one["accessToken"])
    logout = "mutation { logout(everywhere: false) { __typename } }"
    await gw.gql(logout, token=one["accessToken"])
    assert await gw.viewer_id(one["accessToken"]) is None

    two, three = await gw.login("shop-mp", "rhea"), await gw.login("shop-mp", "rhea")
    await cached(gw, two["accessToken"])
    await cached(gw, three["accessToken"])
    everywhere = "mutation { logout(everywhere: true) { __typename } }"
    await gw.gql(everywhere, token=two["accessToken"])
    assert await gw.viewer_id(three["accessToken"]) is None


async def test_an_operator_in_another_process_is_heard(
    gw: Harness, make_config: MakeConfig, database_url: str
) -> None:
    """``gateway accounts disable`` builds its own services (its own process in real life):
    on the SQLite file it signals through the file beside it, on PostgreSQL by NOTIFY."""
    login = await gw.login("shop-mp", "sven")
    await cached(gw, login["accessToken"])
    async with services(make_config(database_url)) as operator:
        account = account_uuid(login["account"]["id"])
        await operator.api.rights.set_disabled(account, True, Operator("ops", "test"))
    await refused_soon(gw, login["accessToken"])

    async with services(make_config(database_url)) as operator:
        await operator.api.rights.set_disabled(account, False, Operator("ops", "test"))
    again = await gw.login("shop-mp", "sven")
    await cached(gw, again["accessToken"])
    async with services(make_config(database_url)) as operator:
        await operator.api.rights.delete_now(account, Operator("ops", "test"))
    await refused_soon(gw, again["accessToken"])


async def _revoke_behind_the_gateways_back(url: str, account_id: str) -> None:
    """A write that broadcasts nothing: only a database read can notice it."""
    db = Database(create_engine(url))
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                update(LoginSession)
                .where(col(LoginSession.account_id) == account_uuid(account_id))
                .values(revoked_at=utcnow())
            )
    finally:
        await db.dispose()


async def test_with_the_channel_down_token_checks_read_the_database_and_then_resume(
    database_url: str, redis_url: str, make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    address, _, number = redis_url.removeprefix("redis://").partition("/")
    host, port = address.split(":")
    proxy = Proxy(host, int(port))
    await proxy.start()
    config = make_config(database_url, redis_url=f"redis://127.0.0.1:{proxy.port}/{number or 0}")
    caplog.set_level(logging.WARNING, logger="gateway.degraded")
    loop = asyncio.get_running_loop()
    try:
        async with running(config) as gw:
            broadcast = gw.app.state.services.db.broadcast
            assert broadcast.mode == "redis"
            first = await gw.login("shop-mp", "tove")
            await cached(gw, first["accessToken"])

            await proxy.cut()
            deadline = loop.time() + DEADLINE
            while broadcast.trusted:
                assert loop.time() < deadline
                await asyncio.sleep(0.01)
            await _revoke_behind_the_gateways_back(database_url, first["account"]["id"])
            before = cache_hits()
            assert await gw.viewer_id(first["accessToken"]) is None  # read, not remembered
            assert cache_hits() == before
            down = [r for r in caplog.records if "invalidation channel" in r.getMessage()]
            assert len(down) == 1
            assert "unavailable" in down[0].getMessage()

            second = await gw.login("shop-mp", "tove")  # logins work; nothing is cached
            for _ in range(3):
                assert await gw.viewer_id(second["accessToken"]) == first["account"]["id"]
            assert cache_hits() == before

            await proxy.start()  # back on the same address
            deadline = loop.time() + DEADLINE
            while not broadcast.trusted:
                assert loop.time() < deadline
                await asyncio.sleep(0.01)
            assert any("invalidation channel is back" in r.getMessage() for r in caplog.records)
            await cached(gw, second["accessToken"])
            logout = "mutation { logout(everywhere: false) { __typename } }"
            await gw.gql(logout, token=second["accessToken"])
            assert await gw.viewer_id(second["accessToken"]) is None
    finally:
        await proxy.cut()


async def test_several_workers_without_a_shared_channel_cache_nothing(
    tmp_path: Path, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gateway serve --workers 2`` on the SQLite file: no worker could hear another's
    logout, so none caches (the CLI tells the workers how many they are)."""
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda *_a, **kw: started.update(kw))
    monkeypatch.setenv(SERVE_WORKERS_ENV, "1")
    config = make_config(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    cli._serve(config, argparse.Namespace(workers=2, host="127.0.0.1", port=0))
    assert started["workers"] == 2
    assert os.environ[SERVE_WORKERS_ENV] == "2"
    async with services(config) as svc:  # what each worker builds
        assert svc.db.broadcast.mode == "off"
        assert svc.api.sessions._cache.epoch() is None


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_broken_listen_connection_reconnects_and_forgets_what_it_held(
    gw: Harness, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL without Redis: the LISTEN connection is killed; what changed meanwhile
    (here: behind the gateway's back, so no broadcast at all) is seen once it is back."""
    caplog.set_level(logging.WARNING, logger="gateway.degraded")
    broadcast = gw.app.state.services.db.broadcast
    assert broadcast.mode == "postgres"
    login = await gw.login("shop-mp", "ulla")
    await cached(gw, login["accessToken"])
    await _revoke_behind_the_gateways_back(database_url, login["account"]["id"])
    assert await gw.viewer_id(login["accessToken"]) is not None  # the cache, as designed

    db = Database(create_engine(database_url))
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = :name"),
                {"name": broadcast.APPLICATION},
            )  # fmt: skip
    finally:
        await db.dispose()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not any("channel is back" in r.getMessage() for r in caplog.records):
        assert loop.time() < deadline, "the LISTEN connection did not come back"
        await asyncio.sleep(0.01)
    assert any("channel unavailable" in r.getMessage() for r in caplog.records)
    assert await gw.viewer_id(login["accessToken"]) is None  # read again, refused


async def test_a_cached_check_answers_the_viewer_the_database_read_made(gw: Harness) -> None:
    token = (await gw.login("shop-mp", "uma"))["accessToken"]
    await cached(gw, token)  # the channel is up: checks are cached
    sessions = gw.app.state.api.sessions
    claims = sessions._tokens.check(token)
    from_database = await sessions._authenticate_from_database(claims.session_id)
    before = cache_hits()
    from_cache = await sessions.authenticate(token)
    assert cache_hits() == before + 1  # (the read above stored it)
    fields = ("account_id", "session_id", "app_key", "expires_at", "account", "session_created_at")
    assert [getattr(from_cache, f) for f in fields] == [getattr(from_database, f) for f in fields]
    assert await sessions.authenticate(token) is from_cache  # made once, when stored
