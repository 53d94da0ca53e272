"""The provider's routes; ``/oauth/token`` is shared with the partners' client credentials
(``token_dispatch``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.oidc import authorize, discovery, logout, token, userinfo
from gateway.oidc.service import OidcServices, oidc
from gateway.store.db import is_unavailable

Endpoint = Callable[[Request, OidcServices], Awaitable[Response]]


def _route(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        try:
            return await endpoint(request, oidc(request))
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            return Response(
                '{"error":"temporarily_unavailable"}',
                status_code=503,
                media_type="application/json",
                headers={"Retry-After": "2", "Cache-Control": "no-store"},
            )

    return handle


def routes() -> list[BaseRoute]:
    return [
        Route("/.well-known/openid-configuration", _route(discovery.configuration)),
        Route("/oauth/authorize", _route(authorize.authorize), methods=["GET", "POST"]),
        Route("/oauth/userinfo", _route(userinfo.userinfo), methods=["GET", "POST"]),
        Route("/oauth/revoke", _route(userinfo.revoke), methods=["POST"]),
        Route("/oauth/logout", _route(logout.logout), methods=["GET", "POST"]),
    ]


async def token_dispatch(
    request: Request, partners: Callable[[Request], Awaitable[Response]]
) -> Response:
    """``POST /oauth/token``: the code and refresh grants are the provider's, everything else
    (``client_credentials`` and every refusal of it) the partners' endpoint's, unchanged."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        grant = (await request.form()).get("grant_type")
        if grant in token.GRANTS:
            return await _route(token.token)(request)
    return await partners(request)
