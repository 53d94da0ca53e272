"""A transaction PostgreSQL rolls back as one side of a deadlock is run again, whole.

Two logins of one person racing an erasure deadlocked in CI (the session-key upsert against
the erasure's rows): the loser's ``loginByCode`` answered "Internal server error." The unit of
work the database rolled back wrote nothing, so ``store.db.retry_conflicts`` runs it again.
Here a real deadlock on a real PostgreSQL: the unit of work under test takes row 1 then row 2
while another transaction holds row 2 and wants row 1; the one under test has the shorter
``deadlock_timeout``, so it is the one PostgreSQL rolls back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.store.db import is_conflict, retry_conflicts
from tests.support.harness import PG_URL, skip_or_fail


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
    holds_one, holds_two = asyncio.Event(), asyncio.Event()
    attempts: list[int] = []

    async def under_test() -> None:
        attempts.append(len(attempts) + 1)
        async with db.begin() as conn:
            await conn.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
            await conn.execute(text(f"UPDATE {table} SET v = v + 1 WHERE id = 1"))
            if len(attempts) == 1:
                holds_one.set()
                await holds_two.wait()
            await conn.execute(text(f"UPDATE {table} SET v = v + 10 WHERE id = 2"))

    async def other() -> None:
        async with db.begin() as conn:
            await conn.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            await conn.execute(text(f"UPDATE {table} SET v = v + 100 WHERE id = 2"))
            await holds_one.wait()
            holds_two.set()
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
