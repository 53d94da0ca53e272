"""Migrations are the only way tables come to exist: head must equal the models, and go back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import gateway.accounts.tables
import gateway.clients.tables
import gateway.store.models  # noqa: F401
from gateway.store import migrate
from gateway.store.db import create_engine
from tests.support.harness import PG_URL

MODEL_TABLES = set(SQLModel.metadata.tables)


def _plain_dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def empty_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it: a new SQLite file, or a throwaway PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    assert PG_URL
    server = make_url(PG_URL)
    name = f"gateway_migrations_test_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_plain_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _inspect(url: str) -> tuple[set[str], str | None, list[Any]]:
    """(tables, alembic revision, differences between the database and the models)."""

    def read(sync: sa.Connection) -> tuple[set[str], str | None, list[Any]]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
        return set(sa.inspect(sync).get_table_names()), context.get_current_revision(), diff

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


def _revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def test_head_creates_exactly_the_models(empty_url: str) -> None:
    tables, revision, _ = await _inspect(empty_url)
    assert tables == set()
    assert revision is None

    migrate.upgrade(empty_url)

    tables, revision, diff = await _inspect(empty_url)
    assert revision == migrate.head_revision()
    assert tables == {*MODEL_TABLES, "alembic_version"}
    assert diff == [], f"models and migrations disagree (write a migration): {diff}"


async def test_every_step_goes_down_and_up_again(empty_url: str) -> None:
    revisions = _revisions_base_to_head()
    assert revisions[-1] == migrate.head_revision()

    revision: str | None
    for revision in revisions:  # up one step at a time
        migrate.upgrade(empty_url, revision)
        assert (await _inspect(empty_url))[1] == revision

    for expected in [*reversed(revisions[:-1]), None]:  # and down one step at a time
        migrate.downgrade(empty_url, "-1")
        assert (await _inspect(empty_url))[1] == expected

    tables, revision, _ = await _inspect(empty_url)
    assert revision is None
    assert tables == {"alembic_version"}, f"downgrade to base left {tables}"

    migrate.upgrade(empty_url)
    tables, revision, diff = await _inspect(empty_url)
    assert revision == migrate.head_revision()
    assert tables == {*MODEL_TABLES, "alembic_version"}
    assert diff == []


async def test_upgrading_at_head_is_a_no_op(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    migrate.upgrade(empty_url)
    tables, revision, diff = await _inspect(empty_url)
    assert revision == migrate.head_revision()
    assert tables == {*MODEL_TABLES, "alembic_version"}
    assert diff == []


def test_head_revision_constant_is_alembics_head() -> None:
    """/readyz compares with HEAD_REVISION so a server never loads alembic: a new migration
    must bump it."""
    assert migrate.head_revision() == migrate.HEAD_REVISION, (
        "a migration was added: set gateway.store.migrate.HEAD_REVISION to its revision"
    )
