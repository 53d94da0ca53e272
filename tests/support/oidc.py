"""A relying party's view of the gateway's OpenID Connect provider, in process: a browser
(an httpx client with its cookie jar) whose login is opened by the real ``BrowserSessions``
(the hosted login page's own tests open it by a password), clients registered in the real
registry, PKCE pairs, and the id_token checked against the published JWKS."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from gateway.clients.registry import ClientView
from gateway.web.browser import BrowserSessions, browser_client
from tests.support.harness import Harness

ORIGIN = "https://gw.test"
SITE = "https://shop.example/callback"


def _with_login(app: Any, browser: BrowserSessions) -> Starlette:
    """The gateway, plus ``/test/login?account=…&amr=…`` opening a browser login."""

    async def login(request: Request) -> Response:
        response = JSONResponse({})
        account = uuid.UUID(request.query_params["account"])
        amr = request.query_params.get("amr", "pwd").split(",")
        await browser.start(response, account, amr, browser_client(request))
        return response

    return Starlette(routes=[Route("/test/login", login), Mount("/", app=app)])


@asynccontextmanager
async def relying_party(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The site's back end: no cookies, https to the gateway's origin."""
    transport = httpx.ASGITransport(app=gw.app)
    async with httpx.AsyncClient(base_url=ORIGIN, transport=transport) as client:
        yield client


@asynccontextmanager
async def browser_of(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_with_login(gw.app, gw.app.state.web.browser))
    async with httpx.AsyncClient(base_url=ORIGIN, transport=transport) as client:
        yield client


async def log_in(browser: httpx.AsyncClient, account_id: uuid.UUID, amr: str = "pwd") -> None:
    response = await browser.get("/test/login", params={"account": str(account_id), "amr": amr})
    assert response.status_code == 200


async def register(
    gw: Harness,
    name: str = "Shop",
    *,
    redirect: str = SITE,
    public: bool = False,
    first_party: bool = True,
    scopes: tuple[str, ...] = ("openid", "profile", "phone"),
    logout: tuple[str, ...] = (),
) -> tuple[ClientView, str | None]:
    clients = gw.app.state.oidc.clients
    view, secret = await clients.add(
        name, [redirect], list(logout), list(scopes), public=public, first_party=first_party
    )
    return view, secret


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def authorize_params(
    client: ClientView, challenge: str | None = None, **extra: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uris[0],
        "scope": "openid profile phone",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | extra


def redirected(response: httpx.Response) -> dict[str, str]:
    """The query of the redirect back to the site."""
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


async def code_for(
    browser: httpx.AsyncClient, client: ClientView, challenge: str | None = None, **extra: str
) -> tuple[str, dict[str, str]]:
    params = authorize_params(client, challenge, **extra)
    answer = redirected(await browser.get("/oauth/authorize", params=params))
    assert answer.get("state") == params["state"], answer
    return answer["code"], params


async def exchange(
    rp: httpx.AsyncClient,
    client: ClientView,
    secret: str | None,
    code: str,
    verifier: str | None = None,
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uris[0],
    }
    if verifier:
        form["code_verifier"] = verifier
    auth = (client.client_id, secret) if secret else None
    if secret is None:
        form["client_id"] = client.client_id
    return await rp.post("/oauth/token", data=form, auth=auth)  # type: ignore[arg-type]


async def id_token_claims(
    rp: httpx.AsyncClient, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of an id_token, its signature checked against the JWKS."""
    keys = KeySet.import_key_set((await rp.get("/.well-known/jwks.json")).json())
    decoded = jwt.decode(token, keys, algorithms=["ES256"])
    return dict(decoded.header), dict(decoded.claims)
