"""The composition root: every shared object is built here, inside the app's lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import httpx
from redis.asyncio import Redis
from starlette.types import ASGIApp

from gateway.accounts import links
from gateway.accounts.miniprogram import MiniProgramSessions
from gateway.accounts.wechat_login import WechatFacts, WechatLogin, facts_codec
from gateway.audit import ClientInfo
from gateway.config import GatewayConfig
from gateway.credentials.passwords import HashParameters, PasswordHashing
from gateway.credentials.service import Passwords
from gateway.credentials.throttle import (
    MemoryThrottleStore,
    RedisThrottleStore,
    Throttle,
    ThrottlePolicy,
    ThrottleStore,
)
from gateway.keyfiles import Secrets, load_secrets
from gateway.partners.oauth import TokenEndpoint
from gateway.partners.rate import PartnerRate
from gateway.partners.registry import Partners
from gateway.partners.service import PartnerAccess
from gateway.partners.tokens import PartnerTokens
from gateway.sessions.service import Sessions, Viewer
from gateway.sessions.tokens import AccessTokens
from gateway.store.db import Database, create_engine
from gateway.store.secretbox import SecretBox
from gateway.wechat.app_token import AppTokens, SharedTokens
from gateway.wechat.client import WeChatClient, default_timeout
from gateway.wechat.oauth import OAuthStates
from gateway.wechat.shared_flight import SharedFlight
from gateway.wechat.singleflight import SingleFlight

ISSUER = "wechat-identity-gateway"


@dataclass
class Services:
    config: GatewayConfig
    secrets: Secrets
    db: Database
    http: httpx.AsyncClient
    redis: Redis | None
    sessions: Sessions
    wechat_login: WechatLogin
    oauth_states: OAuthStates
    miniprogram: MiniProgramSessions
    passwords: Passwords
    unlink: Callable[[Viewer, uuid.UUID, ClientInfo], Awaitable[None]]
    partners: Partners
    partner_tokens: PartnerTokens
    partner_access: PartnerAccess
    token_endpoint: TokenEndpoint


def _http_client(config: GatewayConfig, sandbox: ASGIApp | None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=sandbox) if sandbox is not None else None
    return httpx.AsyncClient(
        base_url=config.wechat_api_base,
        transport=transport,
        timeout=default_timeout(config.settings.wechat_timeout_seconds),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        headers={"user-agent": "wechat-identity-gateway"},
    )


def _throttle(config: GatewayConfig, redis: Redis | None) -> Throttle:
    t = config.throttle
    policy = ThrottlePolicy(
        t.failure_factor, t.wait_step_seconds, t.max_wait_seconds, t.reset_after_seconds
    )
    store: ThrottleStore = RedisThrottleStore(redis) if redis else MemoryThrottleStore()
    return Throttle(store, policy)


@asynccontextmanager
async def services(
    config: GatewayConfig, *, sandbox: ASGIApp | None = None, http: httpx.AsyncClient | None = None
) -> AsyncIterator[Services]:
    """Build everything once; the exit stack closes it all in reverse order."""
    secrets = load_secrets(config)
    async with AsyncExitStack() as stack:
        db = Database(
            create_engine(
                config.database_url, config.settings.db_pool_size, config.settings.db_max_overflow
            )
        )
        stack.push_async_callback(db.dispose)
        if http is None:
            http = await stack.enter_async_context(_http_client(config, sandbox))
        redis = None
        if config.settings.redis_url:
            redis = Redis.from_url(
                config.settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            stack.push_async_callback(redis.aclose)
        hashing = PasswordHashing(HashParameters(**config.passwords.model_dump()))
        stack.callback(hashing.close)
        wechat = WeChatClient(http)
        sessions = Sessions(
            db, AccessTokens(secrets.signing_keys, ISSUER), config.tokens, config.app_kind
        )
        box = SecretBox(secrets.secret_key)
        states = OAuthStates(secrets.secret_key)
        exchanges = SingleFlight[WechatFacts](config.settings.code_cache_seconds)
        shared = None
        if redis is not None:
            encode, decode = facts_codec(box)
            shared = SharedFlight[WechatFacts](
                redis, ttl=config.settings.code_cache_seconds, encode=encode, decode=decode
            )
        login = WechatLogin(config, db, wechat, exchanges, sessions, box, states, shared)
        app_tokens = AppTokens(wechat, SharedTokens(redis, box) if redis else None)
        miniprogram = MiniProgramSessions(config, db, wechat, app_tokens, box, login)
        throttle = _throttle(config, redis)
        passwords = Passwords(db, hashing, throttle, sessions)
        partners = Partners(db, config.partners)
        partner_tokens = PartnerTokens(secrets.signing_keys, ISSUER)
        yield Services(
            config,
            secrets,
            db,
            http,
            redis,
            sessions,
            login,
            states,
            miniprogram,
            passwords,
            partial(links.unlink, db),
            partners,
            partner_tokens,
            PartnerAccess(config, db, PartnerRate(redis)),
            TokenEndpoint(db, partners, partner_tokens, throttle),
        )
