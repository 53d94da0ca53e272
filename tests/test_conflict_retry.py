"""A transaction PostgreSQL rolls back as one side of a deadlock is run again, whole.

Two logins of one person racing an erasure deadlocked in CI (the session-key upsert against
the erasure's rows): the loser's ``loginByCode`` answered "Internal server error." The unit of
work the database rolled back wrote nothing, so ``store.db.retry_conflicts`` runs it again, and
every use case opens its transactions through ``Database.run_in_transaction``, which does so.
Here real deadlocks on a real PostgreSQL: the unit of work under test takes row 1 then row 2
while another transaction holds row 2 and wants row 1 (its table); the other waits first, the
one under test has the shorter ``deadlock_timeout``, so it is the one PostgreSQL rolls back.
Who waits for whom is read from the database (``pg_blocking_pids``), never guessed with a
sleep. Through the primitive, and through the public surface: ``unlinkIdentity`` and
``refreshToken`` (both of its paths) over GraphQL.
"""

from __future__ import annotations

import ast
import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import gateway
from gateway.errors import NotFound
from gateway.store.db import Database, UnitOfWork, is_conflict, retry_conflicts
from tests.support.accounts import account_uuid
from tests.support.accounts import wechat_login as login
from tests.support.harness import PG_URL, Harness, MakeConfig, running, skip_or_fail

UNLINK = """mutation($id: ID!) { unlinkIdentity(id: $id, client: {platform: "web"}) {
  __typename ... on AccountResult { account { identities { kind app { key } } } }
  ... on Error { code message } } }"""
IDENTITIES = "{ viewer { identities { id kind app { key } } } }"
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  __typename ... on RefreshSuccess { refreshToken accessToken } ... on Error { code } } }"""
T = TypeVar("T")
BLOCKED_BY = "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"


@pytest.fixture
def backend() -> str:
    """This module's gateways run on PostgreSQL alone: SQLite never deadlocks (one writer)."""
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    return "postgres"


@pytest.fixture
async def engine() -> AsyncIterator[tuple[AsyncEngine, str]]:
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    engine = create_async_engine(PG_URL)
    table = f"conflict_{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL)"))
        await conn.execute(text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))
    yield engine, table
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {table}"))
    await engine.dispose()


async def test_a_unit_of_work_rolled_back_by_a_deadlock_runs_again(
    engine: tuple[AsyncEngine, str],
) -> None:
    db, table = engine
    holds_one = asyncio.Event()
    attempts: list[int] = []
    watching = db.execution_options(isolation_level="AUTOCOMMIT")

    async def under_test() -> None:
        attempts.append(len(attempts) + 1)
        async with db.begin() as conn:
            await conn.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
            await conn.execute(text(f"UPDATE {table} SET v = v + 1 WHERE id = 1"))
            if len(attempts) == 1:
                holds_one.set()
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                async with watching.connect() as watcher:  # the other waits for row 1 first
                    await _wait_until_blocked_by(watcher, pid)
            await conn.execute(text(f"UPDATE {table} SET v = v + 10 WHERE id = 2"))

    async def other() -> None:
        async with db.begin() as conn:
            await conn.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            await conn.execute(text(f"UPDATE {table} SET v = v + 100 WHERE id = 2"))
            await holds_one.wait()
            # row 1's table, in a mode that waits for the row's writer: granted in turn when
            # it is rolled back, so its second run waits for this one rather than racing it
            await conn.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
            await conn.execute(text(f"UPDATE {table} SET v = v + 1000 WHERE id = 1"))

    await asyncio.gather(retry_conflicts(under_test), other())
    assert attempts == [1, 2]
    async with db.connect() as conn:
        rows = (await conn.execute(text(f"SELECT id, v FROM {table} ORDER BY id"))).all()
    assert [tuple(r) for r in rows] == [(1, 1001), (2, 110)]  # each whole, once


async def test_other_database_errors_are_not_run_again(engine: tuple[AsyncEngine, str]) -> None:
    db, table = engine
    attempts: list[int] = []

    async def duplicate() -> None:
        attempts.append(1)
        async with db.begin() as conn:
            await conn.execute(text(f"INSERT INTO {table} VALUES (1, 0)"))

    with pytest.raises(DBAPIError) as raised:
        await retry_conflicts(duplicate)
    assert not is_conflict(raised.value)
    assert attempts == [1]


async def test_a_typed_error_leaves_the_unit_of_work_after_one_run(
    engine: tuple[AsyncEngine, str],
) -> None:
    db = Database(engine[0])
    attempts: list[int] = []

    async def refused(s: UnitOfWork) -> None:
        attempts.append(1)
        await s.execute(text(f"UPDATE {engine[1]} SET v = v + 1 WHERE id = 1"))
        raise NotFound("on purpose")

    with pytest.raises(NotFound):
        await db.run_in_transaction(refused)
    assert attempts == [1]
    async with engine[0].connect() as conn:  # rolled back
        assert (await conn.execute(text(f"SELECT v FROM {engine[1]} WHERE id = 1"))).scalar() == 0


def test_no_module_of_the_gateway_opens_a_transaction_that_is_not_run_again() -> None:
    """``Database.transaction()`` is one attempt (tests' set-up use it); the gateway's own
    modules go through ``run_in_transaction``, so a new use case gets the retry by
    construction."""
    root = Path(gateway.__file__).parent
    opened = sorted(
        f"{path.relative_to(root)}:{node.lineno}"
        for path in root.rglob("*.py")
        if path != root / "store" / "db.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "transaction"
    )
    assert not opened, f"transactions opened without the conflict retry: {opened}"


async def _wait_until_blocked_by(conn: AsyncConnection, pid: int) -> None:
    """Until another backend waits for a lock ``pid`` holds: what the database itself says
    (``pg_blocking_pids``), asked again until it is so; no guess at how long that takes."""
    async with asyncio.timeout(30):
        while not (await conn.execute(text(BLOCKED_BY), {"pid": pid})).scalar():
            pass


async def _deadlocked(
    engine: AsyncEngine, holds: str, then: str, params: dict[str, Any], request: Awaitable[T]
) -> T:
    """``request``'s answer, sent while another transaction holds the rows ``holds`` locks;
    once the request waits for them (holding what it locked before), the other takes ``then``,
    a lock the request holds: a deadlock. The other waits first, on a ``deadlock_timeout`` of
    10 s, the request on the server's default (1 s): PostgreSQL rolls the request's
    transaction back. ``then`` is a table's lock in EXCLUSIVE mode (the table the request
    locked a row of first): granted to the other in turn when the request is rolled back, so
    the request's second run waits for the other to commit, rather than racing it for the row
    (a row whose locker was rolled back is free to whoever asks first). The other commits
    once it has the lock."""
    watching = engine.execution_options(isolation_level="AUTOCOMMIT")  # sees each change
    async with engine.connect() as other, watching.connect() as watcher:
        await other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
        await other.execute(text(holds), params)
        pid = (await other.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        sent = asyncio.ensure_future(request)
        await _wait_until_blocked_by(watcher, pid)
        await other.execute(text(then))  # returns once the request was rolled back
        await other.commit()
        return await sent


async def test_an_unlink_rolled_back_by_a_deadlock_is_run_again_and_answered(
    gw: Harness, engine: tuple[AsyncEngine, str]
) -> None:
    """``unlinkIdentity`` locks the account, then deletes the identity's row, which the other
    transaction holds. Run again, it answers its typed result; its change and its account
    event were written once."""
    first = await login(gw, "shop-mp", "wx-deadlock")
    await login(gw, "club-mp", "wx-deadlock")
    account_id = account_uuid(first["account"]["id"])
    token = (await login(gw, "shop-mp", "wx-deadlock"))["accessToken"]
    mine = (await gw.gql(IDENTITIES, token=token))["data"]["viewer"]["identities"]
    (club,) = [i for i in mine if i["app"] and i["app"]["key"] == "club-mp"]
    body = await _deadlocked(
        engine[0],
        "SELECT id FROM identities WHERE account_id = :a FOR UPDATE",
        "LOCK TABLE accounts IN EXCLUSIVE MODE",
        {"a": account_id},
        gw.gql(UNLINK, {"id": club["id"]}, token=token),
    )
    assert "errors" not in body, body  # "Internal server error." before the retry
    answer = body["data"]["unlinkIdentity"]
    assert answer["__typename"] == "AccountResult", answer
    left = {i["app"]["key"] for i in answer["account"]["identities"] if i["app"]}
    assert left == {"shop-mp"}
    async with engine[0].connect() as conn:
        unlinked = "SELECT count(*) FROM account_events WHERE account_id = :a AND type = :t"
        events = await conn.execute(text(unlinked), {"a": account_id, "t": "identity.unlinked"})
        assert events.scalar_one() == 1


@pytest.mark.parametrize("fast", [True, False])
async def test_a_refresh_rolled_back_by_a_deadlock_is_run_again_and_answered(
    database_url: str, make_config: MakeConfig, engine: tuple[AsyncEngine, str], fast: bool
) -> None:
    """A refresh locks the session, then spends the token, whose row the other transaction
    holds. The one-statement rotation (``fast``) rolled back is left to the transactional
    refresh (``LostRace``); the transactional one (``[performance] fast_paths = false``) runs
    again. Either answers a new pair, once: its successor is the session's live token."""
    config = make_config(database_url)
    toml = config.settings.config
    assert toml is not None
    toml.write_text(toml.read_text() + f"\n[performance]\nfast_paths = {str(fast).lower()}\n")
    async with running(make_config(database_url)) as gw:
        assert gw.config.performance.fast_paths is fast
        first = await gw.login("shop-mp", "wx-deadlock-refresh")
        body = await _deadlocked(
            engine[0],
            "SELECT t.id FROM refresh_tokens t JOIN login_sessions s ON s.id = t.session_id"
            " WHERE s.account_id = :a FOR UPDATE OF t",
            "LOCK TABLE login_sessions IN EXCLUSIVE MODE",
            {"a": account_uuid(first["account"]["id"])},
            gw.gql(REFRESH, {"t": first["refreshToken"]}),
        )
        assert "errors" not in body, body  # "Internal server error." before
        answer = body["data"]["refreshToken"]
        assert answer["__typename"] == "RefreshSuccess", answer
        again = (await gw.gql(REFRESH, {"t": answer["refreshToken"]}))["data"]["refreshToken"]
        assert again["__typename"] == "RefreshSuccess", again
