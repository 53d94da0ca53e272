"""The composition root: every shared object is built here, inside the app's lifespan.

Adapters never import this module: each declares what it needs (the API its ``ApiServices``),
and this module fills it.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.accounts.service import AccountGraph
from gateway.admin.context import AdminServices
from gateway.api.context import ApiServices
from gateway.clients.grants import Codes, Consents
from gateway.clients.registry import Clients
from gateway.config import SERVE_WORKERS_ENV, GatewayConfig
from gateway.console.service import Console
from gateway.credentials.devices import DeviceCookies
from gateway.credentials.passwords import HashParameters, PasswordHashing
from gateway.credentials.service import Passwords
from gateway.events.delivery import Sender
from gateway.events.feed import EventFeed
from gateway.events.worker import DeliveryWorker
from gateway.keyfiles import Secrets, load_secrets
from gateway.miniprogram.service import MiniProgramSessions
from gateway.oidc.authorize import redirect_origins
from gateway.oidc.server import Provider
from gateway.oidc.service import OidcServices
from gateway.oidc.subjects import Subjects, pairwise_key
from gateway.partners.auth import PartnerAuth
from gateway.partners.entitlements import Entitlements
from gateway.partners.lookups import PartnerLookups
from gateway.partners.oauth import TokenEndpoint
from gateway.partners.rate import PartnerRate
from gateway.partners.registry import Partners
from gateway.partners.tokens import PartnerTokens
from gateway.partners.webhooks import WebhookSecrets
from gateway.profiles.images import ImageWorkers
from gateway.profiles.service import Profiles
from gateway.rights.factors import Factors
from gateway.rights.phone_login import PhoneLogin
from gateway.rights.reauthentication import Reauthentication
from gateway.rights.service import Rights
from gateway.rights.sms_login import SmsLogin
from gateway.sessions.browser import BrowserLogins
from gateway.sessions.cache import TokenCache
from gateway.sessions.service import Sessions
from gateway.sessions.tokens import AccessTokens, successor_key
from gateway.sms.captcha import NoCaptcha
from gateway.sms.codes import CodeStore
from gateway.sms.limits import SmsLimits
from gateway.sms.provider import SmsProvider
from gateway.sms.providers import provider_named
from gateway.sms.sandbox import SandboxSms
from gateway.sms.service import SmsCodes
from gateway.store import broadcast, shared_state
from gateway.store.db import Database, create_engine
from gateway.store.secretbox import SecretBox
from gateway.throttle import (
    MemoryThrottleStore,
    RedisThrottleStore,
    Throttle,
    ThrottlePolicy,
    ThrottleStore,
    WindowLimit,
)
from gateway.web.browser import BrowserSessions
from gateway.web.context import WebServices
from gateway.web.origins import issuer
from gateway.web.pages import Pages
from gateway.weblogin.service import WebLogins
from gateway.wechat.app_token import AppTokens, SharedTokens
from gateway.wechat.client import HttpClient, WeChatClient
from gateway.wechat.network import http_client
from gateway.wechat.oauth import OAuthStates
from gateway.wechat.shared_flight import SharedFlight
from gateway.wechat.singleflight import SingleFlight
from gateway.wechat_login.facts import WechatFacts, facts_codec, pack_facts, unpack_facts
from gateway.wechat_login.service import WechatLogin

if TYPE_CHECKING:
    from redis.asyncio import Redis

ISSUER = "wechat-identity-gateway"


@dataclass
class Services:
    """What the app's own routes use, and the API's port (``api``)."""

    config: GatewayConfig
    secrets: Secrets
    db: Database
    http: HttpClient  # shared; the sandbox helpers post to the emulator with it too
    redis: Redis | None
    partners: Partners
    token_endpoint: TokenEndpoint
    api: ApiServices
    events: DeliveryWorker  # the app runs it in the background (``DeliveryWorker.run``)
    web: WebServices  # the pages' routes (``gateway.web``)
    admin: AdminServices  # the operator console's routes (``gateway.admin``)
    sandbox_sms: SandboxSms | None = None  # ``GET /sandbox/sms`` reads it when in use


@asynccontextmanager
async def services(
    config: GatewayConfig, *, sandbox: Any = None, http: HttpClient | None = None
) -> AsyncIterator[Services]:
    """Build everything once; the exit stack closes it all in reverse order. ``sandbox`` is
    the in-process WeChat emulator (an ASGI app); ``http`` a ready client (tests)."""
    secrets = load_secrets(config)
    async with AsyncExitStack() as stack:
        settings = config.settings
        db = Database(
            create_engine(config.database_url, settings.db_pool_size, settings.db_max_overflow)
        )
        stack.push_async_callback(db.dispose)
        if http is None:
            client = http_client(
                config.wechat_api_base,
                settings.wechat_timeout_seconds,
                sandbox,
                concurrency=settings.wechat_concurrency,
            )
            http = await stack.enter_async_context(client)
        redis = None
        if settings.redis_url:
            redis = shared_state.connect(settings.redis_url)
            stack.push_async_callback(redis.aclose)
        processes = int(os.environ.get(SERVE_WORKERS_ENV) or 1)
        db.broadcast = broadcast.for_deployment(
            config.database_url, settings.redis_url, redis, processes
        )
        stack.push_async_callback(db.broadcast.close)
        clock = sandbox.state.sandbox.now if sandbox is not None else time.time
        yield _assemble(config, secrets, db, http, redis, stack, clock)


def _assemble(
    config: GatewayConfig,
    secrets: Secrets,
    db: Database,
    http: HttpClient,
    redis: Redis | None,
    stack: AsyncExitStack,
    clock: Callable[[], float],
) -> Services:
    hashing = PasswordHashing(HashParameters(**config.passwords.model_dump()))
    stack.callback(hashing.close)
    wechat = WeChatClient(http, concurrency=config.settings.wechat_concurrency)
    box = SecretBox(secrets.secret_key)
    accounts = AccountGraph(db, box)
    accounts.on_merge(Consents.adopt)  # a site's consent follows the person
    accounts.on_erase(Consents.forget)
    sessions = _sessions(config, secrets, db, accounts)
    states = OAuthStates(secrets.secret_key)
    login = _wechat_login(config, db, accounts, wechat, sessions, states, redis, box)
    app_tokens = AppTokens(wechat, SharedTokens(redis, box) if redis else None)
    throttle = _throttle(config, redis)
    webhook_secrets = WebhookSecrets(secrets.secret_key)
    partners = Partners(db, config.partners, webhook_secrets.seal)
    partner_tokens = PartnerTokens(secrets.signing_keys, ISSUER)
    passwords = _passwords(config, secrets, db, accounts, hashing, throttle, sessions, redis)
    miniprogram = MiniProgramSessions(config, db, accounts, wechat, app_tokens, login)
    reauthentication = Reauthentication(config, passwords, login)
    rules, rate = Entitlements(config.apps), PartnerRate(redis)
    provider = provider_named(config.sms_provider, config.sms, clock)
    closing = getattr(provider, "aclose", None)  # a cloud adapter's own HTTP client
    if closing is not None:
        stack.push_async_callback(closing)
    sms = _sms(config, secrets, db, redis, provider, clock)
    starts = WindowLimit(redis, config.web_scan.starts_per_minute, 60.0, clock, "web login codes")
    web_logins = WebLogins(config, db, sessions, wechat, app_tokens, starts, clock)
    sms_login = SmsLogin(config, db, accounts, sessions, sms, reauthentication, miniprogram, login)
    api = ApiServices(
        config=config,
        accounts=accounts,
        sessions=sessions,
        wechat_login=login,
        oauth_states=states,
        miniprogram=miniprogram,
        passwords=passwords,
        partner_auth=PartnerAuth(partner_tokens, partners),
        partner_lookups=PartnerLookups(rules, rate, db),
        partner_events=EventFeed(db, partners, rules, rate),
        rights=Rights(config, db, accounts, sessions, reauthentication, _exports(config, redis)),
        factors=Factors(reauthentication, passwords, login, miniprogram, accounts),
        phone_login=PhoneLogin(db, reauthentication, login, miniprogram, sessions),
        profiles=Profiles(config, db, accounts, wechat, app_tokens, ImageWorkers()),
        sms=sms,
        sms_login=sms_login,
        consents=Consents(db),
        web_logins=web_logins,
    )
    endpoint = TokenEndpoint(db, partners, partner_tokens, throttle)
    events = _events(config, db, partners, webhook_secrets, stack)
    sandbox_sms = provider if isinstance(provider, SandboxSms) else None
    web = _web(config, secrets, db, api)
    console = _console(config, secrets, db, redis, hashing)
    admin = AdminServices(
        config, web.pages, console, api.rights, accounts, db, partners, app_tokens
    )
    return Services(
        config, secrets, db, http, redis, partners, endpoint, api, events, web, admin, sandbox_sms
    )


def _console(
    config: GatewayConfig,
    secrets: Secrets,
    db: Database,
    redis: Redis | None,
    hashing: PasswordHashing,
) -> Console:
    """The console's operators (``/admin``): their own logins, throttled harder than people's."""
    throttle = _console_throttle(config, redis)
    return Console(db, hashing, secrets.secret_key, throttle, config.admin.idle_minutes)


def _wechat_login(
    config: GatewayConfig,
    db: Database,
    accounts: AccountGraph,
    wechat: WeChatClient,
    sessions: Sessions,
    states: OAuthStates,
    redis: Redis | None,
    box: SecretBox,
) -> WechatLogin:
    """WeChat login: code exchanges collapse in this process and, with Redis, across them."""
    exchanges = SingleFlight[WechatFacts](
        config.settings.code_cache_seconds, pack=pack_facts, unpack=unpack_facts
    )
    shared = _shared_flight(config, redis, box)
    return WechatLogin(config, db, accounts, wechat, exchanges, sessions, states, shared)


def _passwords(
    config: GatewayConfig,
    secrets: Secrets,
    db: Database,
    accounts: AccountGraph,
    hashing: PasswordHashing,
    throttle: Throttle,
    sessions: Sessions,
    redis: Redis | None,
) -> Passwords:
    """Passwords: hashed off the event loop, throttled, registrations limited per hour."""
    registrations = WindowLimit(redis, config.throttle.registrations_per_hour, 3600.0)
    devices = DeviceCookies(secrets.secret_key)
    return Passwords(db, accounts, hashing, throttle, sessions, devices, registrations)


def _web(config: GatewayConfig, secrets: Secrets, db: Database, api: ApiServices) -> WebServices:
    """The pages (``gateway.web``): templates, CSP and CSRF keyed from the secret key; the
    browser's login session, a login session of its own kind (``sessions.browser``); the ways
    in are the API's use cases (passwords, WeChat, the scan, the phone tab's SMS codes)."""
    browser = BrowserSessions(BrowserLogins(db, api.accounts, secrets.secret_key), config)
    return WebServices(
        config=config,
        pages=Pages(config, secrets.secret_key, default_locale=config.i18n.default_locale),
        browser=browser,
        passwords=api.passwords,
        wechat_login=api.wechat_login,
        oauth_states=api.oauth_states,
        scan=api.web_logins,
        sms=api.sms,
        sms_login=api.sms_login,
    )


def _sms(
    config: GatewayConfig,
    secrets: Secrets,
    db: Database,
    redis: Redis | None,
    provider: SmsProvider | None,
    clock: Callable[[], float],
) -> SmsCodes:
    """SMS codes on ``clock`` (the sandbox's in sandbox mode: hours and days of limits and
    expiry can be tested); the limits shared through Redis when configured. A captcha check
    is plugged in here (README, "SMS codes")."""
    settings = config.sms
    store = CodeStore(
        db, secrets.secret_key, clock, settings.code_ttl_seconds, settings.max_attempts
    )
    limits = SmsLimits(redis, settings, clock)
    return SmsCodes(config, provider, store, limits, NoCaptcha())


def _events(
    config: GatewayConfig,
    db: Database,
    partners: Partners,
    webhook_secrets: WebhookSecrets,
    stack: AsyncExitStack,
) -> DeliveryWorker:
    """Webhook delivery: its own HTTP clients (never WeChat's), under the URL policy."""
    settings = config.events
    sender = Sender(config.webhook_policy, settings.timeout_seconds, settings.concurrency)
    stack.push_async_callback(sender.aclose)
    rules = Entitlements(config.apps)
    return DeliveryWorker(db, partners, webhook_secrets, rules, sender, settings)


def _sessions(
    config: GatewayConfig, secrets: Secrets, db: Database, accounts: AccountGraph
) -> Sessions:
    """Login state: tokens signed with the rotating keys, refresh successors derived from the
    secret key, the token cache every replica's broadcast keeps fresh."""
    return Sessions(
        db,
        accounts,
        AccessTokens(secrets.signing_keys, ISSUER),
        config.tokens,
        config.app_kind,
        TokenCache(db.broadcast),
        successor_key=successor_key(secrets.secret_key),
        fast_paths=config.performance.fast_paths,
    )


def _exports(config: GatewayConfig, redis: Redis | None) -> WindowLimit | None:
    """One personalData export per account per interval, shared by replicas through Redis."""
    interval = config.accounts.personal_data_interval_seconds
    return WindowLimit(redis, 1, float(interval)) if interval else None


def _shared_flight(
    config: GatewayConfig, redis: Redis | None, box: SecretBox
) -> SharedFlight[WechatFacts] | None:
    """Code exchanges collapse across processes when Redis is there."""
    if redis is None:
        return None
    encode, decode = facts_codec(box)
    return SharedFlight[WechatFacts](
        redis, ttl=config.settings.code_cache_seconds, encode=encode, decode=decode
    )


def _throttle(config: GatewayConfig, redis: Redis | None) -> Throttle:
    t = config.throttle
    policy = ThrottlePolicy(
        t.failure_factor, t.wait_step_seconds, t.max_wait_seconds, t.reset_after_seconds
    )
    store: ThrottleStore = RedisThrottleStore(redis) if redis else MemoryThrottleStore()
    return Throttle(
        store,
        policy,
        account_policy=policy.slowing(t.account_delay_seconds, t.account_max_delay_seconds),
        address_policy=policy.for_addresses(t.address_failure_factor, t.address_window_seconds),
        max_delayed=t.max_delayed_attempts,
    )


def oidc_services(svc: Services) -> OidcServices:
    """The OpenID Connect provider (``gateway.oidc``) on the services built already: the
    registry read through its few seconds' cache, codes and consents, login sessions, and the
    hosted pages' renderer and browser session."""
    api = svc.api
    # the login page's CSP form-action names where an authorize request will redirect to
    svc.web.redirect_origins = redirect_origins
    return OidcServices(
        config=svc.config,
        clients=Clients(svc.db),
        codes=Codes(svc.db, api.sessions),
        consents=api.consents,
        sessions=api.sessions,
        accounts=api.accounts,
        subjects=Subjects(pairwise_key(svc.secrets.secret_key)),
        keys=svc.secrets.signing_keys,
        provider=Provider(svc.secrets.signing_keys),
        throttle=_throttle(svc.config, svc.redis),
        issuer=lambda request: issuer(request, svc.config),
        pages=svc.web.pages,
        browser=svc.web.browser,
    )


def _console_throttle(config: GatewayConfig, redis: Redis | None) -> Throttle:
    """The operators' logins: the password logins' waits, but ten wrong answers from one
    address (not a NAT's thousand: operators are few) are enough to wait."""
    t = config.throttle
    policy = ThrottlePolicy(10, t.wait_step_seconds, t.max_wait_seconds, t.reset_after_seconds)
    store: ThrottleStore = RedisThrottleStore(redis) if redis else MemoryThrottleStore()
    return Throttle(
        store,
        policy,
        account_policy=policy.slowing(t.account_delay_seconds, t.account_max_delay_seconds),
        address_policy=policy.for_addresses(10),
        max_delayed=t.max_delayed_attempts,
    )
