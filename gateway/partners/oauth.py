"""``POST /oauth/token``: the client-credentials grant (RFC 6749 §4.4) for partner services.

Error bodies are authlib's RFC 6749 error classes. authlib's ``AuthorizationServer`` itself is
synchronous and bound to Flask/Django request objects, while client lookups here are async
database reads, so the grant's few rules are applied here and the protocol vocabulary is
authlib's. Client authentication is throttled like a password: per (client id, IP) strictly, per
IP on failures only, and per client id on a queue (one check per delay), so a partner secret
cannot be brute-forced either, nor a partner locked out by strangers.
"""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import unquote

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.addresses import client_address
from gateway.audit import ClientInfo, record
from gateway.errors import TemporarilyUnavailable, Throttled
from gateway.partners.registry import Partners, PartnerView
from gateway.partners.tokens import LIFETIME_SECONDS, PartnerTokens
from gateway.store.db import Database, UnitOfWork, is_unavailable
from gateway.store.models import utcnow
from gateway.throttle import Throttle

log = logging.getLogger("gateway.partners")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CLIENT_ID_MAX = 64  # the partners table's column


def _error(error: OAuth2Error, status: int | None = None, basic: bool = False) -> Response:
    headers = dict(_NO_STORE)
    if basic:
        headers["WWW-Authenticate"] = 'Basic realm="partners"'
    return JSONResponse(
        dict(error.get_body()), status_code=status or error.status_code, headers=headers
    )


class TokenEndpoint:
    def __init__(
        self, db: Database, partners: Partners, tokens: PartnerTokens, throttle: Throttle
    ) -> None:
        self._db = db
        self._partners = partners
        self._tokens = tokens
        self._throttle = throttle

    async def __call__(self, request: Request) -> Response:
        """The grant; a database that cannot serve now is a retryable 503, never a 500."""
        try:
            return await self._grant(request)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("/oauth/token unavailable: %s", type(exc).__name__)
            return throttled_response(TemporarilyUnavailable(retry_after=1.0))

    async def _grant(self, request: Request) -> Response:
        parsed = await _read_request(request)
        if isinstance(parsed, Response):
            return parsed
        fields, client_id, secret = parsed
        ip = client_address(request.scope)
        partner = await self._authenticate(client_id, secret, ip)
        if isinstance(partner, Response):
            return partner
        requested = sorted(scope_to_list(fields.get("scope")) or partner.scopes)
        if not set(requested) <= partner.scopes:
            return _error(InvalidScopeError(description="scope exceeds what this client may have"))
        token = self._tokens.issue(partner.client_id, requested, utcnow())

        async def work(s: UnitOfWork) -> None:
            record(
                s,
                "partner_token",
                ClientInfo("partner", ip=ip),
                partner=partner.client_id,
                scopes=requested,
            )

        await self._db.run_in_transaction(work)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": LIFETIME_SECONDS,
            "scope": " ".join(requested),
        }
        return JSONResponse(body, headers=_NO_STORE)

    async def _authenticate(
        self, client_id: str, secret: str, ip: str | None
    ) -> PartnerView | Response:
        """The partner, or the refusal to answer. Throttled per (partner, address) strictly,
        on the address's failures, and the partner on its queue: failures from elsewhere never
        lock the partner out (``gateway.throttle``)."""
        keys, slow, address = (
            [f"partner-at:{client_id}:{ip}"],
            [f"partner:{client_id}"],
            [f"partner-ip:{ip}"],
        )
        try:
            await self._throttle.admit(keys, slow, address)
        except (Throttled, TemporarilyUnavailable) as exc:
            return throttled_response(exc)
        partner = await self._partners.authenticate(client_id, secret)
        if partner is None:
            try:
                await self._throttle.failed(address)
            except TemporarilyUnavailable as exc:
                return throttled_response(exc)
            return _error(
                InvalidClientError(description="client authentication failed"), 401, basic=True
            )
        await self._throttle.succeeded(forgive=keys, release=slow)
        return partner


async def _read_request(request: Request) -> tuple[dict[str, str], str, str] | Response:
    """The form, and the client's id and secret from exactly one authentication method."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _error(InvalidRequestError(description="use application/x-www-form-urlencoded"))
    fields = {k: str(v) for k, v in (await request.form()).items()}
    grant = fields.get("grant_type")
    if not grant:
        return _error(InvalidRequestError(description="grant_type is required"))
    if grant != "client_credentials":
        return _error(UnsupportedGrantTypeError(grant))
    if "authorization" not in request.headers:
        credentials = fields.get("client_id") or "", fields.get("client_secret") or ""
    elif "client_secret" in fields:
        return _error(InvalidRequestError(description="use one client authentication method"))
    else:
        credentials = basic_credentials(request.headers["authorization"]) or ("", "")
    if not _usable_client_id(credentials[0]):
        # no partner has such an id (and PostgreSQL refuses a NUL in text): an unknown client
        return _error(
            InvalidClientError(description="client authentication failed"), 401, basic=True
        )
    return fields, *credentials


def basic_credentials(header: str) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header (RFC 6749 §2.3.1: each
    form-urlencoded, joined by the first colon, sent as base64 of their UTF-8, RFC 7617), for
    both token endpoints. None when the scheme is not Basic; ``("", "")`` for a token that is
    not strict base64 of UTF-8 (nothing guessed: a stray character is not skipped). Percent
    escapes are decoded, a ``+`` is kept, as authlib reads it (it authenticates the provider's
    clients; the gateway's secrets never hold one); authlib's own helper raises on a bare
    scheme or on bytes that are not UTF-8, so it never reads a header this refuses."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


def _usable_client_id(client_id: str) -> bool:
    """Printable text no longer than the column: never a NUL, a control or a lone surrogate."""
    return 0 < len(client_id) <= _CLIENT_ID_MAX and client_id.isprintable()


def throttled_response(exc: Throttled | TemporarilyUnavailable) -> Response:
    """RFC 6749's answer to a throttled token request (``slow_down`` 429, or 503 while the
    throttle cannot count): the partners' endpoint's and the OpenID Connect provider's."""
    throttled = isinstance(exc, Throttled)
    # English on purpose: RFC 6749's error_description is for the partner's developers
    body = {
        "error": "slow_down" if throttled else "temporarily_unavailable",
        "error_description": exc.message,
    }
    return JSONResponse(
        body,
        status_code=429 if throttled else 503,
        headers={**_NO_STORE, "Retry-After": str(int(exc.retry_after or 1) + 1)},
    )
