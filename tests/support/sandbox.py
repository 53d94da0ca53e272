"""The gateway exactly as `gateway serve` builds it with nothing configured (sandbox mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.config import Settings, load_config
from tests.support.harness import LOGIN


class Sandbox:
    def __init__(self, client: httpx.AsyncClient, app: Starlette) -> None:
        self.client = client
        self.app = app

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        answer = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert "errors" not in body, body
        return body

    async def mint(self, app: str, user: str, method: str = "GET", **extra: str) -> str:
        answer = await self.client.request(
            method, "/sandbox/code", params={"app": app, "user": user, **extra}
        )
        assert answer.status_code == 200, answer.text
        minted = answer.json()
        assert (minted["app"], minted["user"]) == (app, user)
        return str(minted["code"])

    async def login(self, app: str, user: str) -> dict[str, Any]:
        code = await self.mint(app, user)
        body = await self.gql(LOGIN, {"app": app, "code": code, "client": {"platform": "ios"}})
        result: dict[str, Any] = body["data"]["loginByCode"]
        assert result["__typename"] == "LoginSuccess", result
        return result


@asynccontextmanager
async def sandbox(*, raise_app_exceptions: bool = True) -> AsyncIterator[Sandbox]:
    """The gateway exactly as `gateway serve` builds it with nothing configured."""
    config = load_config(Settings())
    assert config.sandbox is True
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            base_url="http://gateway",
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions),
        ) as client,
    ):
        yield Sandbox(client, app)
