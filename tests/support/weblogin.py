"""Scan to log in (``gateway.weblogin``): a sandbox-mode gateway on the test's database, with
browsers (each its own cookie jar) and a phone, and the GraphQL documents they send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.config import Settings, load_config
from gateway.sessions.keys import SigningKeys, new_key, write_keys_file
from tests.support.harness import LOGIN

START = """mutation($app: String!) { startWebLogin(input: {app: $app, client: {platform: "web"}}) {
  __typename ... on WebLoginStarted { ticket qrImage scene expiresAt } ... on Error { code } } }"""
STATUS = """query($ticket: String!, $wait: Float) {
  webLoginStatus(ticket: $ticket, waitSeconds: $wait) { __typename
    ... on WebLoginState { status expiresAt login { accessToken account { id } } }
    ... on Error { code } } }"""
REQUEST = """query($scene: String!) { webLoginRequest(scene: $scene) { __typename
  ... on WebLoginRequest { status origin ip userAgent app { key } } ... on Error { code } } }"""
APPROVE = """mutation($scene: String!, $approve: Boolean!) {
  approveWebLogin(input: {scene: $scene, approve: $approve}) { __typename
    ... on WebLoginRequest { status origin app { key } } ... on Error { code } } }"""
ORIGIN = "https://shop.example.com"


class Site:
    """The gateway as browsers and phones reach it."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._clients: list[httpx.AsyncClient] = []

    def browser(self) -> httpx.AsyncClient:
        """A browser of its own: its own cookies."""
        client = httpx.AsyncClient(
            base_url="http://gateway",
            transport=httpx.ASGITransport(app=self.app),
            headers={"origin": ORIGIN, "user-agent": "TestBrowser/1.0"},
        )
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()

    @property
    def web_logins(self) -> Any:
        return self.app.state.services.api.web_logins

    async def gql(
        self,
        client: httpx.AsyncClient,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        answer = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "errors" not in body, body
        (result,) = body["data"].values()
        assert isinstance(result, dict)
        return result

    async def start(self, browser: httpx.AsyncClient, app: str = "shop-mp") -> dict[str, Any]:
        started = await self.gql(browser, START, {"app": app})
        assert started["__typename"] == "WebLoginStarted", started
        return started

    async def status(
        self, browser: httpx.AsyncClient, ticket: str, wait: float | None = None
    ) -> dict[str, Any]:
        return await self.gql(browser, STATUS, {"ticket": ticket, "wait": wait})

    async def phone_login(self, app: str, user: str) -> str:
        """``user`` logged in to mini-program ``app``: the access token."""
        phone = self.browser()
        minted = await phone.get("/sandbox/code", params={"app": app, "user": user})
        code = minted.json()["code"]
        variables = {"app": app, "code": code, "client": {"platform": "ios"}}
        login = await self.gql(phone, LOGIN, variables)
        assert login["__typename"] == "LoginSuccess", login
        return str(login["accessToken"])

    async def scan(self, scene: str, user: str = "alice", approve: bool = True) -> httpx.Response:
        phone = self.browser()
        params = {"scene": scene, "user": user, "approve": "true" if approve else "false"}
        return await phone.get("/sandbox/scan", params=params)

    async def advance(self, seconds: float) -> None:
        phone = self.browser()
        moved = await phone.post("/sandbox/wechat/sandbox/clock", json={"advance": seconds})
        assert moved.status_code == 200, moved.text


@asynccontextmanager
async def site(database_url: str, workdir: Path) -> AsyncIterator[Site]:
    """Sandbox mode (the emulator, its clock, ``/sandbox/scan``) on ``database_url``."""
    keys = workdir / "keys.json"
    if not keys.exists():  # a second gateway on the same database shares the first one's
        write_keys_file(keys, SigningKeys([new_key()]))
    settings = Settings(
        database_url=database_url,
        secret_key="test-secret-key-0123456789-abcdefghijkl",
        signing_keys=keys,
    )
    config = load_config(settings)
    assert config.sandbox
    app = create_app(config)
    async with app.router.lifespan_context(app):
        gateway = Site(app)
        try:
            yield gateway
        finally:
            await gateway.close()


@pytest.fixture(name="gw")
async def site_gateway(database_url: str, workdir: Path) -> AsyncIterator[Site]:
    """A module's ``gw`` when it imports this: ``site`` on the test's database."""
    async with site(database_url, workdir) as gateway:
        yield gateway
