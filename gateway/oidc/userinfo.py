"""``/oauth/userinfo`` (OpenID Connect Core §5.3) and ``/oauth/revoke`` (RFC 7009).

The bearer is the gateway's own access token of a session a code opened (``oidc:<client>``);
the claims are what the grant's scope and the client's entitlement allow: ``sub`` always,
``profile`` → ``nickname`` and ``picture``, ``phone`` → ``phone_number`` (verified: the
gateway only links phone numbers it verified) when the client was registered with ``phone``.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core import UserInfo
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.accounts.model import IdentityKind
from gateway.clients.grants import app_key, client_of
from gateway.compat.authlib import PlainRequest, error_response
from gateway.oidc.server import Provider
from gateway.oidc.service import OidcServices, client_credentials, web_client
from gateway.sessions.model import Viewer
from gateway.sessions.tokens import TokenRejected
from gateway.store.models import utcnow

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _unauthorized(error: str = "invalid_token") -> Response:
    return JSONResponse(
        {"error": error},
        status_code=401,
        headers={"WWW-Authenticate": f'Bearer error="{error}"', **_NO_STORE},
    )


async def userinfo(request: Request, svc: OidcServices) -> Response:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return JSONResponse(
            {"error": "invalid_request"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer", **_NO_STORE},
        )
    try:
        viewer = await svc.sessions.authenticate(token.strip())
    except TokenRejected:
        return _unauthorized()
    client_id = client_of(viewer.app_key)
    grant = await svc.codes.grant_of(viewer.session_id) if client_id else None
    view = await svc.clients.live(client_id) if client_id else None
    if grant is None or view is None:
        return _unauthorized()
    claims = await _claims(svc, viewer, view.scopes, set(grant[1].split()))
    claims["sub"] = svc.subjects.sub(view, viewer.account_id)
    return JSONResponse(dict(claims), headers=_NO_STORE)


async def _claims(
    svc: OidcServices, viewer: Viewer, entitled: frozenset[str], scopes: set[str]
) -> UserInfo:
    info = UserInfo()
    if "profile" in scopes:
        account = viewer.account or (await svc.accounts.accounts([viewer.account_id]))[0]
        if account is not None:
            info.update(nickname=account.nickname, picture=account.avatar_url)
    if "phone" in scopes and "phone" in entitled:
        identities = (await svc.accounts.identities([viewer.account_id]))[0]
        phones = [i.subject for i in identities if i.kind == IdentityKind.PHONE]
        if phones:
            info.update(phone_number=phones[0], phone_number_verified=True)
    return UserInfo({k: v for k, v in info.items() if v is not None})


async def revoke(request: Request, svc: OidcServices) -> Response:
    """RFC 7009: the client authenticates; a refresh or access token of its own ends the
    login session it belongs to; anything else is answered 200 all the same (§2.2)."""
    form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    fields = dict(form)
    oauth = PlainRequest("POST", str(request.url), request.headers, [], form)
    fetched = svc.prefetched(request)
    client_id, _ = client_credentials(request, fields)
    view = await svc.clients.get(client_id) if client_id else None
    if view is not None:
        fetched.clients[view.client_id] = view
    bound = Provider.bind(fetched)
    try:
        methods = ["client_secret_basic", "client_secret_post", "none"]
        try:
            client = svc.provider.authenticate_client(oauth, methods, "revocation")
            if not fields.get("token"):
                raise InvalidRequestError("token is required")
        except OAuth2Error as error:
            return error_response(svc.provider, oauth, error)  # type: ignore[no-any-return]
    finally:
        Provider.unbind(bound)
    viewer = await _holder(svc, fields["token"], fields.get("token_type_hint"))
    if viewer is not None and client_of(viewer.app_key) == client.get_client_id():
        await svc.sessions.logout(viewer, False, web_client(request))
    return Response(status_code=200, headers=_NO_STORE)


async def _holder(svc: OidcServices, token: str, hint: str | None) -> Viewer | None:
    """The live session a refresh or access token belongs to."""
    order = [_by_refresh, _by_access]
    for find in order if hint != "access_token" else order[::-1]:
        viewer: Viewer | None = await find(svc, token)
        if viewer is not None:
            return viewer
    return None


async def _by_refresh(svc: OidcServices, token: str) -> Viewer | None:
    grant = await svc.codes.refresh_grant(token)
    if grant is None or grant.session_id is None:
        return None
    ends = grant.expires_at or utcnow()
    return Viewer(grant.account_id, grant.session_id, app_key(grant.client_id), ends)


async def _by_access(svc: OidcServices, token: str) -> Viewer | None:
    try:
        viewer: Viewer = await svc.sessions.authenticate(token)
    except TokenRejected:
        return None
    return viewer
