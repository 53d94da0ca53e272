"""The client registry: ``gateway clients ...`` writes it, every running gateway reads it
through a cache of a few seconds, so that an added, disabled or re-keyed client is seen
everywhere within ``CACHE_SECONDS`` without a restart (and without a channel of its own)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlmodel import col

from gateway.audit import ClientInfo, record
from gateway.clients.tables import OidcClient
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import utcnow

SCOPES = frozenset({"openid", "profile", "phone", "offline_access"})
DEFAULT_SCOPES = ("openid", "profile")
CACHE_SECONDS = 2.0
_DUMMY_HASH = hashlib.sha256(b"no such client").hexdigest()


class ClientError(Exception):
    """An operator's client command cannot be done (the CLI prints the message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ClientView:
    client_id: str
    name: str
    public: bool
    first_party: bool
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    disabled: bool
    created_at: datetime
    secret_hash: str | None = None

    @classmethod
    def of(cls, row: OidcClient) -> ClientView:
        return cls(
            row.client_id,
            row.name,
            row.public,
            row.first_party,
            tuple(row.redirect_uris),
            tuple(row.post_logout_redirect_uris),
            frozenset(row.scopes),
            row.disabled_at is not None,
            row.created_at,
            row.secret_hash,
        )

    def check_secret(self, secret: str) -> bool:
        """Constant time; a public client has no secret to match."""
        expected = self.secret_hash or _DUMMY_HASH
        return hmac.compare_digest(expected, hash_secret(secret)) and self.secret_hash is not None

    def public_dict(self) -> dict[str, object]:
        """What ``gateway clients show|list`` prints: never the secret's hash."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "public": self.public,
            "first_party": self.first_party,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "scopes": sorted(self.scopes),
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_uri(uri: str) -> str:
    """An absolute http(s) URI without a fragment: what a redirect may go to, matched exactly."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise ClientError(f"not an absolute http(s) URI without a fragment: {uri!r}")
    if len(uri) > 2048:
        raise ClientError("a redirect URI is at most 2048 characters")
    return uri


def _check_new_client(name: str, redirect_uris: list[str], scopes: list[str]) -> None:
    """What a new client must have, refused before anything is written (``ClientError``)."""
    unknown = set(scopes) - SCOPES
    if unknown:
        raise ClientError(f"unknown scopes {sorted(unknown)} (known: {sorted(SCOPES)})")
    if "openid" not in scopes:
        raise ClientError("a client's scopes include openid")
    if not redirect_uris:
        raise ClientError("at least one --redirect-uri")
    if not name.strip() or len(name) > 128:
        raise ClientError("a name of 1 to 128 characters")


class Clients:
    """Reads are cached per client for ``CACHE_SECONDS`` (the clock is injectable)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[str, tuple[float, ClientView | None]] = {}

    async def get(self, client_id: str) -> ClientView | None:
        """The client (disabled ones too), at most ``CACHE_SECONDS`` old."""
        if not 0 < len(client_id) <= 64 or not client_id.isprintable():
            return None
        now = self._clock()
        hit = self._cache.get(client_id)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        async with self._db.reader() as s:
            query = select(OidcClient).where(col(OidcClient.client_id) == client_id)
            row = (await s.execute(query)).scalar_one_or_none()
        view = ClientView.of(row) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[client_id] = (now, view)
        return view

    async def live(self, client_id: str) -> ClientView | None:
        """The client if it may be used now (not disabled)."""
        client = await self.get(client_id)
        return client if client is not None and not client.disabled else None

    async def add(
        self,
        name: str,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str],
        scopes: list[str],
        *,
        public: bool = False,
        first_party: bool = False,
    ) -> tuple[ClientView, str | None]:
        """Register a client; its secret (confidential clients) is returned once."""
        _check_new_client(name, redirect_uris, scopes)
        secret = None if public else secrets.token_urlsafe(32)
        # hex: an id never starts with "-", which a command line would take for an option
        client_id = secrets.token_hex(16)
        uris = [check_uri(u) for u in redirect_uris]
        logout_uris = [check_uri(u) for u in post_logout_redirect_uris]

        async def work(s: UnitOfWork) -> OidcClient:
            row = OidcClient(
                client_id=client_id,
                name=name.strip(),
                secret_hash=hash_secret(secret) if secret else None,
                public=public,
                first_party=first_party,
                redirect_uris=list(uris),
                post_logout_redirect_uris=list(logout_uris),
                scopes=sorted(set(scopes)),
            )
            s.add(row)
            record(s, "oidc_client_added", _OPERATOR, client_id=row.client_id, name=row.name)
            return row

        row = await self._db.run_in_transaction(work)
        return ClientView.of(row), secret

    async def rotate_secret(self, client_id: str) -> str:
        client = await self._one(client_id)
        if client.public:
            raise ClientError(f"client {client_id} is public: it has no secret")
        secret = secrets.token_urlsafe(32)
        await self._update(client_id, "oidc_client_secret_rotated", secret_hash=hash_secret(secret))
        return secret

    async def disable(self, client_id: str) -> None:
        await self._update(client_id, "oidc_client_disabled", disabled_at=utcnow())

    async def show(self, client_id: str) -> ClientView:
        return await self._one(client_id)

    async def all(self) -> list[ClientView]:
        async with self._db.reader() as s:
            rows = await s.execute(select(OidcClient).order_by(col(OidcClient.created_at)))
            return [ClientView.of(r) for r in rows.scalars()]

    async def _one(self, client_id: str) -> ClientView:
        self._cache.pop(client_id, None)
        client = await self.get(client_id)
        if client is None:
            raise ClientError(f"no client {client_id}")
        return client

    async def _update(self, client_id: str, kind: str, **values: object) -> None:
        async def work(s: UnitOfWork) -> None:
            result = await s.execute(
                update(OidcClient)
                .where(col(OidcClient.client_id) == client_id)
                .values(updated_at=utcnow(), **values)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise ClientError(f"no client {client_id}")
            record(s, kind, _OPERATOR, client_id=client_id)

        await self._db.run_in_transaction(work)
        self._cache.pop(client_id, None)


_OPERATOR = ClientInfo("operator")
