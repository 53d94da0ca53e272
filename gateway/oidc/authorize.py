"""``/oauth/authorize``: the authorization code flow's front half.

authlib validates the request first (client, exact redirect URI, response type, scope, PKCE
S256, nonce, ``prompt``); what it refuses before the redirect URI is known to be the
client's (an unknown or disabled client, an unregistered redirect URI) is an error page,
never a redirect. Then: no browser login (or one older than ``prompt=login`` or ``max_age``
asks) goes to the hosted ``/login`` page and comes back here; a client that is not
first-party needs the person's consent (a page, its POST CSRF-checked), remembered per
account and client; then authlib issues the code, which is kept hashed for 60 seconds.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.clients.registry import ClientView
from gateway.compat.authlib import PlainRequest
from gateway.oidc.ports import BrowserLogin, epoch
from gateway.oidc.server import Prefetched, Provider, Subject
from gateway.oidc.service import OidcServices, web_client

AUTH_AFTER = "gw_auth_after"
"""Added to the authorize URL the login page returns to: the login must be newer than this."""

SCOPE_TEXT = {
    "openid": "Your account's identifier for this site",
    "profile": "Your nickname and picture",
    "phone": "Your phone number",
    "offline_access": "Staying signed in on this site",
}


async def authorize(request: Request, svc: OidcServices) -> Response:
    query = [(k, v) for k, v in request.query_params.multi_items()]
    fetched = svc.prefetched(request)
    client_id = request.query_params.get("client_id") or ""
    view = await svc.clients.get(client_id) if client_id else None
    if view is not None:
        fetched.clients[view.client_id] = view
    login = await svc.browser.current(request)
    oauth = PlainRequest("GET", str(request.url), request.headers, query, [])
    bound = Provider.bind(fetched)
    try:
        return await _authorize(request, svc, fetched, oauth, view, login)
    finally:
        Provider.unbind(bound)


async def _authorize(
    request: Request,
    svc: OidcServices,
    fetched: Prefetched,
    oauth: PlainRequest,
    view: ClientView | None,
    login: BrowserLogin | None,
) -> Response:
    params = dict(oauth.args)
    fresh = login is not None and _fresh(login, params)
    user = None
    if login is not None and fresh and view is not None:
        user = Subject(login.account_id, svc.subjects.sub(view, login.account_id))
    try:
        grant = svc.provider.get_consent_grant(oauth, end_user=user)
    except OAuth2Error as error:
        return _refusal(request, svc, oauth, error)
    if login is None or user is None or view is None:
        return _to_login(request, params, again=login is not None)
    if request.method == "POST" and not svc.pages.check_csrf(request, await request.form()):
        return svc.pages.error(
            request,
            "This form has expired",
            "Go back to the site and try again.",
            403,
            domain="oidc",
        )
    if not view.first_party:
        decided = await _consent(request, svc, oauth, grant, view, user)
        if decided is not None:
            return decided
    fetched.auth_time, fetched.amr = epoch(login.auth_time), tuple(login.amr)
    response: Response = svc.provider.create_authorization_response(
        oauth, grant_user=user, grant=grant
    )
    if fetched.saved_code is not None:
        code, carried = fetched.saved_code
        await svc.codes.save(code, carried, web_client(request))
    return response


async def _consent(
    request: Request,
    svc: OidcServices,
    oauth: PlainRequest,
    grant: Any,
    view: ClientView,
    user: Subject,
) -> Response | None:
    """``None`` when the person consented (before, or now by the form's POST); else the
    consent page, a refusal (``access_denied``) or ``consent_required`` for ``prompt=none``."""
    scopes = set((oauth.scope or "").split())
    prompts = (oauth.args.get("prompt") or "").split()
    if request.method == "POST":
        if (await request.form()).get("decision") != "allow":
            denied: Response = svc.provider.create_authorization_response(
                oauth, grant_user=None, grant=grant
            )
            return denied
        await svc.consents.grant(user.account_id, view.client_id, scopes, web_client(request))
        return None
    if "consent" not in prompts and await svc.consents.covers(
        user.account_id, view.client_id, scopes
    ):
        return None
    if "none" in prompts:
        error = ConsentRequiredError(redirect_uri=grant.redirect_uri)
        error.state = oauth.payload.state
        refused: Response = svc.provider.handle_error_response(oauth, error)
        return refused
    return _consent_page(request, svc, grant, view, scopes)


def _consent_page(
    request: Request, svc: OidcServices, grant: Any, view: ClientView, scopes: set[str]
) -> Response:
    """What the site asks for, Allow or Deny; its form may post on to the site's origin (the
    redirect after the POST: Chromium applies ``form-action`` to it)."""
    context = {
        "client_name": view.name,
        "scopes": [SCOPE_TEXT[s] for s in sorted(scopes) if s in SCOPE_TEXT],
        "action": f"{request.url.path}?{request.url.query}",
        "redirect_host": urlsplit(grant.redirect_uri).netloc,
    }
    return svc.pages.render(
        request, "oidc_consent.html", context, domain="oidc",
        form_origins=[_origin(grant.redirect_uri)],
    )  # fmt: skip


def _refusal(request: Request, svc: OidcServices, oauth: PlainRequest, error: Any) -> Response:
    """Back to the client with the error when its redirect URI is known to be its own, else an
    error page (never a redirect to an unchecked URI)."""
    if error.redirect_uri:
        response: Response = svc.provider.handle_error_response(oauth, error)
        return response
    detail = error.description or error.error
    return svc.pages.error(request, "This sign-in link is not valid", detail, 400, domain="oidc")


def _fresh(login: BrowserLogin, params: dict[str, str]) -> bool:
    """Whether the browser's login is recent enough for this request: newer than the moment
    ``prompt=login`` sent the person to log in again, and within ``max_age``."""
    auth_time = _seconds(login.auth_time)
    after = _moment(params.get(AUTH_AFTER, ""))
    if after is not None:
        return auth_time > after
    if "login" in (params.get("prompt") or "").split():
        return False
    max_age = params.get("max_age", "")
    return not (max_age.isdigit() and time.time() - auth_time > int(max_age))


def _to_login(request: Request, params: dict[str, str], again: bool) -> Response:
    """To the hosted login page, which comes back here; ``again``: a login exists but is not
    fresh enough, so the page must ask anew (``prompt=login``)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != AUTH_AFTER]
    target: dict[str, str] = {}
    after = params.get(AUTH_AFTER, "")
    if again or after or "login" in (params.get("prompt") or "").split() or params.get("max_age"):
        query = [(k, v) for k, v in query if k not in ("prompt", "max_age")]
        # still not fresh after a login: keep the first moment
        moment = _moment(after)
        query.append((AUTH_AFTER, f"{time.time() if moment is None else moment:.6f}"))
        target["prompt"] = "login"
    back = f"{request.url.path}?{urlencode(query)}"
    return RedirectResponse(f"/login?{urlencode({'next': back, **target})}", status_code=302)


def _moment(value: str) -> float | None:
    try:
        moment = float(value)
    except ValueError:
        return None
    return moment if math.isfinite(moment) else None


def _seconds(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def redirect_origins(target: str) -> list[str]:
    """The origin a login page's ``next`` may end at, for that page's CSP ``form-action``
    (Chromium applies it to every redirect after the login form's POST): the ``redirect_uri``
    of an authorize URL. Not checked against the client here: ``/oauth/authorize`` matches it
    exactly before it redirects anywhere, so naming it in the CSP opens no redirect."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path != "/oauth/authorize":
        return []
    uris = parse_qs(parts.query).get("redirect_uri", [])
    origin = _origin(uris[0]) if len(uris) == 1 else ""
    scheme = urlsplit(origin).scheme
    return [origin] if scheme in ("http", "https") and urlsplit(origin).hostname else []
