"""``end_session_endpoint`` (OpenID Connect RP-Initiated Logout 1.0): ends the browser's
login at the gateway, then returns to the site only at a ``post_logout_redirect_uri``
registered for the client exactly (``state`` echoed); anything else is an error page, so the
endpoint never becomes an open redirect. Without an ``id_token_hint`` nothing says a site
asked (another page could have sent the browser here): the hosted ``/logout`` page asks."""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from joserfc import jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.clients.grants import audit
from gateway.oidc.service import OidcServices, web_client
from gateway.sessions.keys import ALGORITHM


async def logout(request: Request, svc: OidcServices) -> Response:
    items: list[tuple[str, Any]] = list(request.query_params.multi_items())
    if request.method == "POST":
        items = list((await request.form()).multi_items())
    params = {k: v for k, v in items if isinstance(v, str)}
    hint = params.get("id_token_hint")
    if not hint:  # nothing shows a site asked: the person confirms on the hosted page
        return RedirectResponse("/logout", status_code=303)
    claims = _hint(svc, hint, svc.issuer(request))
    if claims is None:
        return _refused(
            request, svc, "The sign-out request names a token this gateway did not issue."
        )
    audience = claims.get("aud")
    client_id = params.get("client_id") or (audience if isinstance(audience, str) else None)
    if client_id and audience and audience != client_id:
        return _refused(request, svc, "The sign-out request names two different sites.")
    target = params.get("post_logout_redirect_uri")
    if target:
        view = await svc.clients.live(client_id) if client_id else None
        if view is None or target not in view.post_logout_redirect_uris:
            return _refused(
                request, svc, "The address to return to is not registered for this site."
            )
        response: Response = RedirectResponse(
            add_params_to_uri(target, [("state", params["state"])] if params.get("state") else []),
            status_code=302,
        )
    else:
        response = svc.pages.render(request, "oidc_logged_out.html", {}, domain="oidc")
    login = await svc.browser.current(request)
    await svc.browser.end(request, response)
    if login is not None:
        await audit(svc.codes, "oidc_logout", web_client(request), login.account_id, client_id)
    return response


def _hint(svc: OidcServices, token: str, issuer: str) -> dict[str, Any] | None:
    """The claims of an id_token this gateway signed for ``issuer`` (expired ones too: a
    logout often comes long after the login), else ``None``."""
    try:
        decoded = jwt.decode(token, svc.keys.key_set, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError):
        return None
    claims = dict(decoded.claims)
    return claims if claims.get("iss") == issuer else None


def _refused(request: Request, svc: OidcServices, detail: str) -> Response:
    return svc.pages.error(request, "This sign-out link is not valid", detail, 400, domain="oidc")
