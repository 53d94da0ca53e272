"""The composition root: every shared object is built here, inside the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from starlette.types import ASGIApp

from gateway.accounts.miniprogram import MiniProgramSessions
from gateway.accounts.wechat_login import WechatFacts, WechatLogin
from gateway.config import GatewayConfig
from gateway.keyfiles import Secrets, load_secrets
from gateway.sessions.service import Sessions
from gateway.sessions.tokens import AccessTokens
from gateway.store.db import Database, create_engine
from gateway.store.secretbox import SecretBox
from gateway.wechat.app_token import AppTokens
from gateway.wechat.client import WeChatClient, default_timeout
from gateway.wechat.oauth import OAuthStates
from gateway.wechat.singleflight import SingleFlight

ISSUER = "wechat-identity-gateway"


@dataclass
class Services:
    config: GatewayConfig
    secrets: Secrets
    db: Database
    http: httpx.AsyncClient
    wechat: WeChatClient
    sessions: Sessions
    wechat_login: WechatLogin
    oauth_states: OAuthStates
    app_tokens: AppTokens
    miniprogram: MiniProgramSessions


def _http_client(config: GatewayConfig, sandbox: ASGIApp | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=sandbox) if sandbox is not None else None
    return httpx.AsyncClient(
        base_url=config.wechat_api_base,
        transport=transport,
        timeout=default_timeout(config.settings.wechat_timeout_seconds),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        headers={"user-agent": "wechat-identity-gateway"},
    )


@asynccontextmanager
async def services(
    config: GatewayConfig, *, sandbox: ASGIApp | None = None, http: httpx.AsyncClient | None = None
) -> AsyncIterator[Services]:
    """Build everything once; close it all on the way out, in reverse order."""
    secrets = load_secrets(config)
    db = Database(create_engine(config.database_url))
    client = http or _http_client(config, sandbox)
    try:
        wechat = WeChatClient(client)
        sessions = Sessions(db, AccessTokens(secrets.signing_keys, ISSUER), config.tokens)
        box = SecretBox(secrets.secret_key)
        states = OAuthStates(secrets.secret_key)
        exchanges = SingleFlight[WechatFacts](config.settings.code_cache_seconds)
        login = WechatLogin(config, db, wechat, exchanges, sessions, box, states)
        app_tokens = AppTokens(wechat)
        miniprogram = MiniProgramSessions(config, db, wechat, app_tokens, box, login)
        yield Services(
            config, secrets, db, client, wechat, sessions, login, states, app_tokens, miniprogram
        )
    finally:
        if http is None:
            await client.aclose()
        await db.dispose()
