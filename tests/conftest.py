"""Fixtures: the real app over ASGI, a real database, the sandbox emulator as WeChat.

Every test that takes ``backend`` runs on SQLite and, when ``GATEWAY_TEST_POSTGRES_URL`` is set,
on PostgreSQL too. Without it the PostgreSQL runs are skipped with a message; with
``GATEWAY_TEST_REQUIRE_SERVICES=1`` (what .ci/run sets) a missing service fails instead.
The helpers these fixtures are built from, shared by the test files, are in ``tests/support``.
Under pytest-xdist (``-n N``, what .ci/run uses) each worker has databases of its own
(``tests.support.workers``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from gateway.config import GatewayConfig, Settings, load_config
from gateway.store import migrate
from tests.support.browser import launched, serve
from tests.support.harness import (
    APPS_TOML,
    PG_URL,
    REDIS_URL,
    UPSTREAM,
    Configure,
    Harness,
    MakeConfig,
    make_configure,
    running,
    skip_or_fail,
    truncate,
)
from tests.support.oidc import relying_party
from tests.support.partners import World, build_world
from tests.support.webhooks import SECRET, Start, started
from tests.support.workers import WORKER, create_postgres_database

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist, the worker's PostgreSQL database exists before a test uses it."""
    if PG_URL and WORKER is not None:
        create_postgres_database(PG_URL)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not PG_URL:
        skip_or_fail("PostgreSQL")
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the migrated file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    assert PG_URL
    migrate.upgrade(PG_URL)
    return PG_URL


@pytest.fixture
async def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_migrated")
        await truncate(url)
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "gateway.db"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeConfig:
    monkeypatch.setenv("TEST_CLUB_SECRET", "club-secret-0123456789")
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(APPS_TOML, encoding="utf-8")

    def make(database_url: str, **overrides: Any) -> GatewayConfig:
        """``overrides``: settings (environment variables' names); a file table is
        ``configure``'s (Settings ignores a name it does not know, as an environment must)."""
        unknown = overrides.keys() - Settings.model_fields.keys()
        assert not unknown, f"not a setting: {sorted(unknown)} (a file table? use configure)"
        settings = Settings(
            database_url=database_url,
            wechat_api_base=UPSTREAM,
            config=config_file,
            secret_key="test-secret-key-0123456789-abcdefghijkl",
            signing_keys=tmp_path / "keys.json",
            **overrides,
        )
        keys = tmp_path / "keys.json"
        if not keys.exists():
            from gateway.sessions.keys import SigningKeys, new_key, write_keys_file

            write_keys_file(keys, SigningKeys([new_key()]))
        return load_config(settings)

    return make


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The test Redis, with the gateway's keys (gw:*) cleared before and after."""
    if not REDIS_URL:
        skip_or_fail("Redis")
    assert REDIS_URL
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)

    async def clear() -> None:
        async for key in client.scan_iter(match="gw:*"):
            await client.delete(key)

    await clear()
    yield REDIS_URL
    await clear()
    await client.aclose()


@pytest.fixture
async def gw(database_url: str, make_config: MakeConfig) -> AsyncIterator[Harness]:
    async with running(make_config(database_url)) as harness:
        yield harness


@pytest.fixture
async def rp(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """A relying party's back end, calling the ``gw`` of the test's module."""
    async with relying_party(gw) as client:
        yield client


@pytest.fixture
def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """Like ``make_config``, with ``[throttle]``/``[passwords]`` tables and Redis."""
    return make_configure(tmp_path, monkeypatch)


@pytest.fixture
async def world(gw: Harness) -> World:
    """The partner tests' population, logged in through the ``gw`` of the test's module."""
    return await build_world(gw)


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configuration whatsoever, in an empty working directory."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def gateway(
    database_url: str, make_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Start:
    """Account events' tests: ``gateway(toml)`` runs the gateway with these ``[[partners]]``
    and ``[events]`` (``tests.support.webhooks``)."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)

    def start(toml: str) -> AbstractAsyncContextManager[Harness]:
        return started(database_url, make_config, tmp_path, monkeypatch, toml)

    return start


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium (``tests.support.browser``), one per test module."""
    yield from launched()


@pytest.fixture(scope="module")
def sandbox_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sandbox gateway's working directory: its SQLite file and secret key."""
    return tmp_path_factory.mktemp("sandbox-gateway")


@pytest.fixture(scope="module")
def sandbox_gateway(browser: Browser, sandbox_home: Path) -> Iterator[str]:
    """A real `gateway serve` in sandbox mode (nothing configured), one per test module, for
    ``browser`` to visit. (Takes ``browser`` so that a missing Chromium skips before any
    process starts.)"""
    yield from serve(sandbox_home, {})
