"""The ASGI application, assembled explicitly: routes, middleware, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import logs, playground
from gateway.addresses import client_address, trusted_proxies
from gateway.admin import routes as admin_routes
from gateway.api import avatars
from gateway.api.http import GatewayGraphQL
from gateway.api.schema import build_schema
from gateway.api.trusted import TrustedDocuments
from gateway.bootstrap import Services, oidc_services, services
from gateway.clients.grants import Codes
from gateway.config import DEFAULT_SQLITE_FILE, GatewayConfig, load_config
from gateway.events.retention import prune_expired
from gateway.limits import BodySizeLimit, InProgressLimit
from gateway.logs import RequestLog
from gateway.metrics import metrics
from gateway.oidc import routes as oidc_routes
from gateway.rights.service import purge_periodically
from gateway.store import migrate
from gateway.web import documents as web_documents
from gateway.web import routes as web_routes
from gateway.wechat.client import HttpClient

log = logging.getLogger("gateway")


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and its schema is at the migrations' head."""
    svc: Services = request.app.state.services
    try:
        await asyncio.wait_for(svc.db.ping(), timeout=2.0)
        current = await migrate.current_revision(svc.db.engine)
    except Exception as exc:
        return JSONResponse(
            {"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, status_code=503
        )
    if current != migrate.HEAD_REVISION:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "database schema is not at head: run `gateway migrate`",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok"})


async def guarded_metrics(request: Request) -> Response:
    """``/metrics``: with ``GATEWAY_METRICS_TOKEN``, for its bearer only; without, loopback only
    (a scraper on the same host or pod), so the public port never shows it."""
    token = request.app.state.services.config.settings.metrics_token
    if token is None:
        address = client_address(request.scope)
        allowed = address is not None and ipaddress.ip_address(address).is_loopback
    else:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        allowed = hmac.compare_digest(given, token.get_secret_value().encode())
    return await metrics(request) if allowed else PlainTextResponse("Not Found", 404)


async def jwks(request: Request) -> Response:
    svc: Services = request.app.state.services
    return JSONResponse(
        svc.secrets.signing_keys.public_jwks(), headers={"cache-control": "public, max-age=300"}
    )


def create_app(
    config: GatewayConfig | None = None,
    *,
    http: HttpClient | None = None,
    auto_migrate: bool | None = None,
) -> Starlette:
    """``auto_migrate`` defaults to on for the embedded SQLite file, off for a real database."""
    config = config or load_config()
    emulator = _emulator(config) if config.sandbox else None
    migrate_now = config.embedded_database if auto_migrate is None else auto_migrate
    if not logging.getLogger().handlers:  # a uvicorn worker process: nobody configured it yet
        logs.configure(config.settings.log_level, config.settings.effective_log_format)
    logs.quiet_secret_loggers()
    app = Starlette(
        routes=_routes(config, emulator),
        middleware=_middleware(config),
        lifespan=_lifespan(config, emulator, http, migrate_now),
    )
    if config.performance.fast_paths:  # innermost: after the body limit, before the router
        app.user_middleware.append(Middleware(FirstRoute, router=app.router))
    return app


class FirstRoute:
    """The first route (GraphQL's, almost every request) handed its request directly when it
    matches, as the router would hand it: without the router's walk and Starlette's exception
    middleware, whose only business is ``starlette.exceptions.HTTPException`` (the GraphQL
    view raises none: it answers its own errors) and the handlers of function endpoints
    (the view is an ASGI app). Anything else goes down the usual stack."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self._router = router
        first = router.routes[0]
        # only GraphQL's view: a function endpoint needs the exception middleware's handlers
        graphql = isinstance(first, Route) and isinstance(first.app, GatewayGraphQL)
        self._route = first if graphql else None

    @property
    def active(self) -> bool:
        """The first route is GraphQL's view: its requests take the shortcut."""
        return self._route is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._route is not None and scope["type"] == "http":
            match, child_scope = self._route.matches(scope)
            if match is Match.FULL:  # as Router.app does it
                scope.setdefault("router", self._router)
                scope["route"] = self._route
                scope.update(child_scope)
                await self._route.handle(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _lifespan(
    config: GatewayConfig, emulator: Any, http: HttpClient | None, migrate_now: bool
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Everything shared is built here, when the server starts, and closed when it stops."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if config.embedded_database:
            _create_private(config.data_dir / DEFAULT_SQLITE_FILE)
        if migrate_now and await migrate.behind(config.database_url):
            await asyncio.to_thread(migrate.upgrade, config.database_url)
        async with services(config, sandbox=emulator, http=http) as svc:
            app.state.services = svc
            app.state.api = svc.api
            app.state.web = svc.web
            app.state.oidc = oidc_services(svc)
            app.state.admin = svc.admin
            await _sync_partners(svc)
            if config.sandbox:
                await _sandbox_partner(svc)
            _announce(config)
            _freeze_startup()
            purge = asyncio.create_task(_maintenance(config, svc, app.state.oidc.codes))
            app.state.purge_task = purge
            events = asyncio.create_task(svc.events.run())  # account events' webhooks
            app.state.events_task = events
            try:
                yield
            finally:
                gc.unfreeze()  # what served is garbage now: collectable again
                for task in (events, purge):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    return lifespan


async def _maintenance(config: GatewayConfig, svc: Services, codes: Codes) -> None:
    """Every ``purge_interval_seconds``: due deletions, then events past their retention and
    authorization codes nobody redeemed (``codes``: the OpenID Connect provider's)."""

    async def prune_events() -> object:
        return await prune_expired(svc.db, config.events.retention_days)

    interval = config.accounts.purge_interval_seconds
    await purge_periodically(svc.api.rights, interval, also=[prune_events, codes.prune])


def _freeze_startup() -> None:
    """What startup built (modules, the schema, mappers, services) lives as long as the server:
    moved out of the collector's sight, a full collection no longer walks it. Each one was a
    ~50-70 ms stall of every request in flight (the bench's viewer p99, idle or not). No
    collection first (it would cost every start, and every test, tens of milliseconds): the
    little garbage startup leaves waits, frozen, for the shutdown's ``unfreeze``."""
    gc.freeze()


def _routes(config: GatewayConfig, emulator: Any) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route(
            "/graphql",
            GatewayGraphQL(
                schema=build_schema(config.settings),
                in_progress=InProgressLimit(config.settings.max_in_progress),
                trusted=TrustedDocuments.load(
                    config.trusted_documents_file,
                    only=config.api.trusted_documents_only,
                    pages=web_documents.PAGE_DOCUMENTS,
                ),
                prepared=config.performance.fast_paths,
            ),
            methods=["GET", "POST"],
        ),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/.well-known/jwks.json", jwks),
        Route("/metrics", guarded_metrics),
        Route("/oauth/token", oauth_token, methods=["POST"]),
        Route("/avatars", avatars.upload_avatar, methods=["POST"]),
        Route("/avatars/{name}", avatars.serve_avatar, methods=["GET"]),
        *playground.routes(),
        *web_routes.routes(),
        *oidc_routes.routes(),
        *admin_routes.routes(),
    ]
    if emulator is not None:
        from gateway import sandbox_routes

        routes += [*sandbox_routes.routes(), Mount("/sandbox/wechat", app=emulator)]
    if config.sms_provider == "sandbox":
        from gateway import sandbox_routes

        routes += sandbox_routes.sms_routes()
    return routes


def _emulator(config: GatewayConfig) -> Any:
    """The in-process WeChat emulator of sandbox mode, imported only then (a serving process
    with real apps never loads it)."""
    from gateway import sandbox_routes
    from gateway.wechat.sandbox import create_sandbox_app

    return create_sandbox_app(sandbox_routes.emulated_apps(config))


def _middleware(config: GatewayConfig) -> list[Middleware]:
    return [
        *trusted_proxies(config.settings.trusted_proxies),
        Middleware(RequestLog),
        *_cors(config),
        Middleware(
            BodySizeLimit,
            max_bytes=config.settings.max_body_bytes,
            timeout=config.settings.body_timeout_seconds,
            larger={"/avatars": (avatars.BODY_LIMIT, avatars.too_large)},
        ),
    ]


def _cors(config: GatewayConfig) -> list[Middleware]:
    """Websites calling the API from a browser: only the origins the operator lists."""
    origins = [o.strip() for o in config.settings.cors_origins.split(",") if o.strip()]
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            # scan to log in: a listed site's page sends the binding cookie startWebLogin set
            # (fetch with credentials: "include"); only these origins, never "*"
            allow_credentials=True,
            # date: the SDK measures token expiry by the server's clock, not the phone's
            expose_headers=["x-request-id", "www-authenticate", "date"],
            max_age=600,
        )
    ]


def _create_private(path: Path) -> None:
    """The embedded database holds accounts and sealed keys: owner-only from its first byte."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


async def _sync_partners(svc: Services) -> None:
    """Config partners into the registry now if the database is ready, else on first use."""
    try:
        await svc.partners.ensure_synced()
    except Exception as exc:
        log.warning("partners not synced yet (%s): retrying on first use", type(exc).__name__)


async def _sandbox_partner(svc: Services) -> None:
    """Sandbox mode: the demo partner, its webhook at this gateway when ``gateway serve`` said
    where it answers (else at the first look at ``/sandbox/webhooks``)."""
    from gateway import sandbox_routes

    origin = os.environ.get(sandbox_routes.SERVE_ORIGIN_ENV)
    try:
        await sandbox_routes.ensure_demo_partner(svc, origin)
    except Exception as exc:
        log.warning("the sandbox partner is not set up (%s)", type(exc).__name__)


async def oauth_token(request: Request) -> Response:
    """Relying parties' code and refresh grants (``gateway.oidc``), partners' client
    credentials (``partners.oauth``)."""
    svc: Services = request.app.state.services
    return await oidc_routes.token_dispatch(request, svc.token_endpoint)


def _announce(config: GatewayConfig) -> None:
    if config.sandbox:
        log.warning(
            "SANDBOX MODE: no apps configured (GATEWAY_CONFIG unset), so WeChat is emulated "
            "in-process with demo apps %s. Never use this for real users.",
            ", ".join(a.key for a in config.apps),
        )
    else:
        log.info("serving %d app(s) against %s", len(config.apps), config.wechat_api_base)
    if not config.performance.fast_paths:
        log.warning(
            "[performance] fast_paths = false: every login and refresh takes the "
            "transactional (reference) path"
        )
