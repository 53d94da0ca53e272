"""Alembic, driven from code: migrations are the only way tables come to exist.

Alembic is imported only by what migrates (``gateway migrate``, the embedded default's
migration at start when its file is behind): a serving process answers ``/readyz`` with
:data:`HEAD_REVISION` and one SELECT, and never loads alembic (~9 MiB of a process's memory,
with mako and pygments, which alembic brings).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

HEAD_REVISION = "0013"
"""The newest migration: a test holds it equal to alembic's head (bump it with a migration)."""

_PACKAGE = Path(__file__).resolve().parent.parent


def script_location() -> Path:
    """``alembic/`` in a source checkout, ``gateway/migrations`` inside an installed wheel."""
    for candidate in (_PACKAGE / "migrations", _PACKAGE.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("alembic migrations not found next to the gateway package")


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    _outside_loop(command.upgrade, alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    _outside_loop(command.downgrade, alembic_config(database_url), revision)


def _outside_loop(fn: Callable[[Config, str], None], cfg: Config, revision: str) -> None:
    """env.py runs its own event loop, which cannot nest inside a running one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(cfg, revision)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn, cfg, revision).result()


def head_revision() -> str | None:
    """The head as alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def behind(database_url: str) -> bool:
    """Whether the database is not at :data:`HEAD_REVISION` (new, or made by an older
    gateway), read without alembic: the embedded default migrates at every start, and a
    restart over an up-to-date file must not load alembic into the serving process."""
    from gateway.store.db import create_engine

    engine = create_engine(database_url)
    try:
        return await current_revision(engine) != HEAD_REVISION
    finally:
        await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision, from alembic's own table (None before the first migration)."""
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
