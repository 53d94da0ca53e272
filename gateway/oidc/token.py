"""``POST /oauth/token`` for relying parties: the ``authorization_code`` and ``refresh_token``
grants (``client_credentials`` stays the partners', ``partners.oauth``).

What authlib will ask for is read first (the client, the code or the refresh token's grant);
authlib validates (client authentication, redirect URI, PKCE); then the code is spent and its
login session opened, or the refresh token rotated (``Sessions.refresh``: reuse detection);
then authlib builds the answer and the id_token. Client authentication with a secret is
throttled like the partners' (per client and address, per address on failures, per client
on a queue).
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from gateway.addresses import client_address
from gateway.audit import ClientInfo
from gateway.clients.grants import CodeReused
from gateway.compat.authlib import (
    PlainRequest,
    error_response,
    finish_token_request,
    validate_token_request,
)
from gateway.errors import (
    AccountDisabled,
    InvalidRefreshToken,
    RefreshTokenReused,
    TemporarilyUnavailable,
    Throttled,
)
from gateway.oidc.server import Prefetched, Provider, Subject
from gateway.oidc.service import OidcServices, client_credentials, web_client
from gateway.partners.oauth import basic_credentials, throttled_response
from gateway.sessions.model import IssuedTokens

GRANTS = frozenset({"authorization_code", "refresh_token"})
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def token(request: Request, svc: OidcServices) -> Response:
    form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    fields = dict(form)
    client_id, secret = client_credentials(request, fields)
    fetched = svc.prefetched(request)
    oauth = PlainRequest("POST", str(request.url), _readable_headers(request), [], form)
    view = await svc.clients.get(client_id) if client_id else None
    if view is not None:
        fetched.clients[view.client_id] = view
    keys = _throttle_keys(client_id, client_address(request.scope)) if secret else None
    if keys is not None:
        refused = await _admit(svc, keys)
        if refused is not None:
            return refused
    await _prefetch_grant(svc, fetched, fields)
    bound = Provider.bind(fetched)
    try:
        try:
            grant = validate_token_request(svc.provider, oauth)
        except OAuth2Error as error:
            if keys is not None and isinstance(error, InvalidClientError):
                await svc.throttle.failed(keys[2])
            elif keys is not None:
                await svc.throttle.succeeded(forgive=keys[0], release=keys[1])
            return error_response(svc.provider, oauth, error)  # type: ignore[no-any-return]
        if keys is not None:
            await svc.throttle.succeeded(forgive=keys[0], release=keys[1])
        try:
            fetched.issued = await _issue(svc, fields, web_client(request))
        except OAuth2Error as error:
            return error_response(svc.provider, oauth, error)  # type: ignore[no-any-return]
        return finish_token_request(svc.provider, grant)  # type: ignore[no-any-return]
    finally:
        Provider.unbind(bound)


def _readable_headers(request: Request) -> Headers:
    """The headers authlib is shown: without a Basic header the gateway cannot read
    (``basic_credentials``), which authenticates no one; authlib's own reading would fail
    on bytes that are not UTF-8 (a 500) where the answer is ``invalid_client``."""
    if basic_credentials(request.headers.get("authorization", "")) != ("", ""):
        return request.headers
    headers = request.headers.mutablecopy()
    del headers["authorization"]
    return headers


async def _prefetch_grant(svc: OidcServices, fetched: Prefetched, fields: dict[str, str]) -> None:
    """The code's or the refresh token's grant, and the person it is for."""
    account = client_id = None
    if fields.get("grant_type") == "authorization_code" and fields.get("code"):
        fetched.code = await svc.codes.find(fields["code"])
        if fetched.code is not None:
            account, client_id = fetched.code.account_id, fetched.code.client_id
    elif fields.get("grant_type") == "refresh_token" and fields.get("refresh_token"):
        fetched.refresh = await svc.codes.refresh_grant(fields["refresh_token"])
        if fetched.refresh is not None:
            account, client_id = fetched.refresh.account_id, fetched.refresh.client_id
    view = fetched.clients.get(client_id or "")
    if account is not None and view is not None:
        fetched.user = Subject(account, svc.subjects.sub(view, account))


async def _issue(svc: OidcServices, fields: dict[str, str], client: ClientInfo) -> IssuedTokens:
    """Spend the code (open the session) or rotate the refresh token: ``invalid_grant`` for
    a code used before (its first tokens revoked), expired, or a spent or revoked token."""
    try:
        if fields.get("grant_type") == "authorization_code":
            return await svc.codes.redeem(fields["code"], client)
        return await svc.sessions.refresh(fields["refresh_token"], client)
    except CodeReused:
        raise InvalidGrantError("the code was used before or has expired") from None
    except (InvalidRefreshToken, RefreshTokenReused):
        raise InvalidGrantError("the refresh token is not valid") from None
    except AccountDisabled:
        raise InvalidGrantError("the account cannot log in") from None


def _throttle_keys(client_id: str, ip: str | None) -> tuple[list[str], list[str], list[str]]:
    return [f"oidc-at:{client_id}:{ip}"], [f"oidc:{client_id}"], [f"oidc-ip:{ip}"]


async def _admit(
    svc: OidcServices, keys: tuple[list[str], list[str], list[str]]
) -> Response | None:
    try:
        await svc.throttle.admit(*keys)
    except (Throttled, TemporarilyUnavailable) as exc:
        return throttled_response(exc)
    return None
