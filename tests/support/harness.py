"""The real app over ASGI, a real database, the sandbox emulator as WeChat.

Also the test services: PostgreSQL (``GATEWAY_TEST_POSTGRES_URL``) and Redis
(``GATEWAY_TEST_REDIS_URL``); without them their tests are skipped with a message, or fail with
``GATEWAY_TEST_REQUIRE_SERVICES=1`` (what .ci/run sets).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.config import GatewayConfig, Settings, load_config
from gateway.sessions.keys import SigningKeys, new_key, write_keys_file
from gateway.store.db import create_engine
from gateway.wechat.sandbox import create_sandbox_app
from tests.support import workers

# under pytest-xdist, the worker's own databases (tests.support.workers)
PG_URL = workers.postgres_url(os.environ.get("GATEWAY_TEST_POSTGRES_URL"))
REDIS_URL = workers.redis_url(os.environ.get("GATEWAY_TEST_REDIS_URL"))
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


def skip_or_fail(what: str) -> None:
    message = (
        f"{what} not configured: set GATEWAY_TEST_POSTGRES_URL / GATEWAY_TEST_REDIS_URL "
        "(or run .ci/run) to include these tests"
    )
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


async def truncate(url: str) -> None:
    """Empty every table of the migrated database at ``url``."""
    engine = create_engine(url)
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    await engine.dispose()


MakeConfig = Callable[..., GatewayConfig]
"""What the ``make_config`` fixture returns: ``make(database_url, **settings_overrides)``."""


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (``/metrics``): the series of ``name`` with
    exactly ``labels`` (none for an unlabelled metric); 0 when it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):  # an inline table, e.g. [sms]'s aliyun = {...}
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return ("true" if value else "false") if isinstance(value, bool) else repr(value)


def _toml_table(name: str, values: dict[str, Any] | None) -> str:
    if not values:
        return ""
    lines = "\n".join(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return f"\n[{name}]\n{lines}\n"


Configure = Callable[..., GatewayConfig]
"""What the ``configure`` fixture returns: ``make(database_url, *, redis_url=, **tables)``, each
table of the TOML file by name (``throttle=``, ``passwords=``, ``sms=``...)."""


def make_configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Configure:
    """Like ``make_config``, with ``[throttle]``/``[passwords]`` tables and Redis."""
    monkeypatch.setenv("TEST_CLUB_SECRET", "club-secret-0123456789")
    keys = tmp_path / "keys.json"
    write_keys_file(keys, SigningKeys([new_key()]))
    files = itertools.count()

    def make(
        database_url: str,
        *,
        redis_url: str | None = None,
        **tables: dict[str, Any] | None,
    ) -> GatewayConfig:
        """``tables``: TOML tables by name (``throttle``, ``passwords``, ``sms``...)."""
        path = tmp_path / f"gateway-{next(files)}.toml"
        text = APPS_TOML + "".join(_toml_table(name, values) for name, values in tables.items())
        path.write_text(text, encoding="utf-8")
        settings = Settings(
            database_url=database_url,
            wechat_api_base=UPSTREAM,
            config=path,
            secret_key="test-secret-key-0123456789-abcdefghijkl",
            signing_keys=keys,
            redis_url=redis_url,  # explicit: never pick up GATEWAY_REDIS_URL from the shell
        )
        return load_config(settings)

    return make


@dataclass
class Harness:
    """The gateway under test and its WeChat."""

    client: httpx.AsyncClient
    upstream: httpx.AsyncClient
    config: GatewayConfig
    app: Starlette
    upstream_app: Starlette

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

    async def viewer_id(self, token: str) -> str | None:
        """The account a token acts for; None when the gateway refuses the token (401)."""
        response = await self.client.post(
            "/graphql",
            json={"query": "{ viewer { id } }"},
            headers={"authorization": f"Bearer {token}"},
        )
        if response.status_code == 401:
            assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"
            return None
        body = response.json()
        assert "errors" not in body, body
        viewer = body["data"]["viewer"]
        return None if viewer is None else str(viewer["id"])

    async def refused(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> str:
        """Post with a bearer token the gateway must refuse (RFC 6750): the error's code."""
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        body = response.json()
        assert "data" not in body, body
        (error,) = body["errors"]
        return str(error["extensions"]["code"])

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


def sandbox_for(config: GatewayConfig) -> Starlette:
    from gateway.sandbox_routes import emulated_apps

    return create_sandbox_app(emulated_apps(config))


@asynccontextmanager
async def running(
    config: GatewayConfig,
    *,
    upstream_app: Starlette | None = None,
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
