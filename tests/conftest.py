"""Test harness: the real app over ASGI, a real database, the sandbox emulator as WeChat.

Every test that takes ``backend`` runs on SQLite and, when ``GATEWAY_TEST_POSTGRES_URL`` is set,
on PostgreSQL too. Without it the PostgreSQL runs are skipped with a message; with
``GATEWAY_TEST_REQUIRE_SERVICES=1`` (what .ci/run sets) a missing service fails instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from gateway.app import create_app
from gateway.config import GatewayConfig, Settings, load_config
from gateway.store import migrate
from gateway.store.db import create_engine
from gateway.wechat.sandbox import create_sandbox_app

PG_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("GATEWAY_TEST_REQUIRE_SERVICES") == "1"
UPSTREAM = "http://wechat.test"

APPS_TOML = """
[[apps]]
key = "shop-mp"
kind = "miniprogram"
appid = "wxtestshop000001"
secret = "shop-secret-0123456789"
platform = "test-platform"
name = "Shop"

[[apps]]
key = "club-mp"
kind = "miniprogram"
appid = "wxtestclub000002"
secret_env = "TEST_CLUB_SECRET"
platform = "test-platform"
name = "Club"

[[apps]]
key = "news-oa"
kind = "official_account"
appid = "wxtestnews000003"
secret = "news-secret-0123456789"
platform = "test-platform"
name = "News"

[[apps]]
key = "solo-mp"
kind = "miniprogram"
appid = "wxtestsolo000004"
secret = "solo-secret-0123456789"
name = "Solo"
"""


def _skip_or_fail(what: str) -> None:
    message = (
        f"{what} not configured: set GATEWAY_TEST_POSTGRES_URL / GATEWAY_TEST_REDIS_URL "
        "(or run .ci/run) to include these tests"
    )
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not PG_URL:
        _skip_or_fail("PostgreSQL")
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test gets a copy of the migrated file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> Iterator[str]:
    assert PG_URL
    migrate.upgrade(PG_URL)
    return PG_URL


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    await engine.dispose()


@pytest.fixture
async def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_migrated")
        await _truncate(url)
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "gateway.db"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TEST_CLUB_SECRET", "club-secret-0123456789")
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(APPS_TOML, encoding="utf-8")

    def make(database_url: str, **overrides: Any) -> GatewayConfig:
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


@dataclass
class Harness:
    """The gateway under test and its WeChat."""

    client: httpx.AsyncClient
    upstream: httpx.AsyncClient
    config: GatewayConfig
    app: Any
    upstream_app: Any

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def appid(self, key: str) -> str:
        app = self.config.app(key)
        assert app is not None
        return app.appid

    async def mint(self, app: str, user: str, **extra: Any) -> str:
        answer = await self.upstream.post(
            "/sandbox/codes", json={"appid": self.appid(app), "user": user, **extra}
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["code"])

    async def wechat_ids(self, app: str, user: str) -> dict[str, str | None]:
        """openid, unionid and the latest session_key WeChat holds for ``user`` in ``app``."""
        answer = await self.upstream.get(
            "/sandbox/identity", params={"appid": self.appid(app), "user": user}
        )
        ids: dict[str, str | None] = answer.json()
        state = self.upstream_app.state.sandbox
        ids["session_key"] = state.session_keys.get((self.appid(app), ids["openid"]))
        return ids

    async def upstream_calls(self, path: str) -> int:
        stats = (await self.upstream.get("/sandbox/stats")).json()
        return int(stats["calls"].get(path, 0))

    async def login(self, app: str, user: str, **client: Any) -> dict[str, Any]:
        code = await self.mint(app, user)
        body = await self.gql(
            LOGIN, {"app": app, "code": code, "client": {"platform": "ios", **client}}
        )
        result: dict[str, Any] = body["data"]["loginByCode"]
        assert result["__typename"] == "LoginSuccess", result
        return result


LOGIN = """
mutation Login($app: String!, $code: String!, $client: ClientInput!) {
  loginByCode(input: {app: $app, code: $code, client: $client}) {
    __typename
    ... on LoginSuccess {
      accessToken refreshToken expiresAt refreshExpiresAt isNewAccount
      account { id identities { kind app { key } } }
    }
    ... on Error { code message }
    ... on InvalidInputError { field }
    ... on RateLimitedError { retryAfterSeconds }
  }
}
"""


def sandbox_for(config: GatewayConfig) -> Any:
    from gateway.sandbox_routes import emulated_apps

    return create_sandbox_app(emulated_apps(config))


@asynccontextmanager
async def running(
    config: GatewayConfig,
    *,
    upstream_app: Any = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Harness]:
    """Start the app (lifespan included) against ``upstream_app`` or a custom transport."""
    upstream_app = upstream_app or sandbox_for(config)
    wechat_transport = transport or httpx.ASGITransport(app=upstream_app)
    async with (
        httpx.AsyncClient(base_url=UPSTREAM, transport=wechat_transport) as wechat,
        httpx.AsyncClient(
            base_url=UPSTREAM, transport=httpx.ASGITransport(app=upstream_app)
        ) as control,
    ):
        app = create_app(config, http=wechat, auto_migrate=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                base_url="http://gateway", transport=httpx.ASGITransport(app=app)
            ) as client,
        ):
            yield Harness(client, control, config, app, upstream_app)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The test Redis, with the gateway's keys (gw:*) cleared before and after."""
    if not REDIS_URL:
        _skip_or_fail("Redis")
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
async def gw(database_url: str, make_config: Any) -> AsyncIterator[Harness]:
    async with running(make_config(database_url)) as harness:
        yield harness
