"""The partner registry: config partners synced at start-up, CLI partners added at run time,
all in one table, every secret kept as a SHA-256 only."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from gateway.config import PartnerModel
from gateway.partners.scopes import ALL
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import Partner, utcnow

_DUMMY_HASH = hashlib.sha256(b"no such partner").hexdigest()


class RegistryError(Exception):
    """An operator's partner command cannot be done (the CLI prints the message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PartnerView:
    client_id: str
    apps: frozenset[str]
    platforms: frozenset[str]
    scopes: frozenset[str]
    rate_limit_per_minute: int
    source: str
    disabled: bool
    webhook_url: str | None = None

    @classmethod
    def of(cls, row: Partner) -> PartnerView:
        return cls(
            row.client_id,
            frozenset(row.apps),
            frozenset(row.platforms),
            frozenset(row.scopes),
            row.rate_limit_per_minute,
            row.source,
            row.disabled_at is not None,
            row.webhook_url,
        )


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


Seal = Callable[[str, str], str]
"""``seal(client_id, webhook_secret)``: the secret as stored (``partners.webhooks``)."""


class Partners:
    """``configured``: the config file's partners, synced before first use (None: the CLI,
    which must neither add nor disable config partners); ``seal`` seals their webhook
    secrets."""

    def __init__(
        self,
        db: Database,
        configured: tuple[PartnerModel, ...] | None = None,
        seal: Seal | None = None,
    ) -> None:
        self._db = db
        self._configured = configured
        self._seal = seal
        self._synced = configured is None
        self._lock = asyncio.Lock()

    async def ensure_synced(self) -> None:
        """Sync once; retried on use while the database was not ready at start-up."""
        if self._synced:
            return
        async with self._lock:
            if self._synced or self._configured is None:
                return
            try:
                await self.sync(self._configured)
            except IntegrityError:  # a replica starting at the same moment inserted it first
                await self.sync(self._configured)
            self._synced = True

    async def sync(self, configured: tuple[PartnerModel, ...]) -> None:
        """Make the table hold exactly what the config says for config-sourced partners."""

        async def work(s: UnitOfWork) -> None:
            rows = {r.client_id: r for r in (await s.execute(select(Partner))).scalars()}
            for p in configured:
                row = rows.get(p.client_id) or Partner(client_id=p.client_id, secret_hash="")
                if row.source != "config" and p.client_id in rows:
                    raise RegistryError(f"partner {p.client_id} exists from the CLI")
                row.secret_hash = hash_secret(p.secret.get_secret_value() if p.secret else "")
                row.apps, row.platforms, row.scopes = (
                    list(p.apps),
                    list(p.platforms),
                    list(p.scopes),
                )
                row.rate_limit_per_minute = p.rate_limit_per_minute
                row.webhook_url, row.webhook_secret_sealed = self._webhook(p)
                row.source, row.disabled_at, row.updated_at = "config", None, utcnow()
                s.add(row)
            names = {p.client_id for p in configured}
            for row in rows.values():
                if row.source == "config" and row.client_id not in names and not row.disabled_at:
                    row.disabled_at = utcnow()  # removed from the config: no more tokens

        await self._db.run_in_transaction(work)

    def _webhook(self, p: PartnerModel) -> tuple[str | None, str | None]:
        if p.webhook_url is None or p.webhook_secret is None:
            return None, None
        if self._seal is None:
            raise RegistryError("config partners' webhooks need the gateway's secret key")
        return p.webhook_url, self._seal(p.client_id, p.webhook_secret.get_secret_value())

    async def authenticate(self, client_id: str, secret: str) -> PartnerView | None:
        """Constant time whether or not the client exists; None for anything wrong."""
        await self.ensure_synced()
        partner = await self._row(client_id)
        expected = partner.secret_hash if partner else _DUMMY_HASH
        if not hmac.compare_digest(expected, hash_secret(secret)) or partner is None:
            return None
        return None if partner.disabled_at else PartnerView.of(partner)

    async def get(self, client_id: str) -> PartnerView | None:
        await self.ensure_synced()
        row = await self._row(client_id)
        return PartnerView.of(row) if row else None

    async def _row(self, client_id: str) -> Partner | None:
        async with self._db.reader() as s:
            query = select(Partner).where(col(Partner.client_id) == client_id)
            return (await s.execute(query)).scalar_one_or_none()

    async def add(
        self,
        client_id: str,
        apps: list[str],
        platforms: list[str],
        scopes: list[str],
        rate_limit_per_minute: int = 600,
        webhook: tuple[str, str] | None = None,
        secret: str | None = None,
    ) -> str:
        """Register a partner; its client secret (``secret``, or a new one) is returned once.
        ``webhook``: its URL and sealed signing secret."""
        unknown = set(scopes) - ALL
        if unknown:
            raise RegistryError(f"unknown scopes {sorted(unknown)}")
        secret = secret or new_secret()

        async def work(s: UnitOfWork) -> None:
            if (
                await s.execute(select(Partner).where(col(Partner.client_id) == client_id))
            ).first():
                raise RegistryError(f"partner {client_id} already exists")
            s.add(
                Partner(
                    client_id=client_id,
                    secret_hash=hash_secret(secret),
                    apps=apps,
                    platforms=platforms,
                    scopes=scopes,
                    rate_limit_per_minute=rate_limit_per_minute,
                    source="cli",
                    webhook_url=webhook[0] if webhook else None,
                    webhook_secret_sealed=webhook[1] if webhook else None,
                )
            )

        await self._db.run_in_transaction(work)
        return secret

    async def rotate_secret(self, client_id: str) -> str:
        secret = new_secret()
        await self._update(client_id, secret_hash=hash_secret(secret))
        return secret

    async def disable(self, client_id: str) -> None:
        await self._update(client_id, disabled_at=utcnow())

    async def set_webhook(self, client_id: str, url: str | None, sealed: str | None) -> None:
        """A CLI partner's webhook (None: no webhook; its events go to the feed only)."""
        await self._update(client_id, webhook_url=url, webhook_secret_sealed=sealed)

    async def webhook_secret(self, client_id: str) -> str | None:
        """A partner's sealed webhook secret, if it has one."""
        row = await self._row(client_id)
        return row.webhook_secret_sealed if row else None

    async def with_secrets(self) -> list[tuple[PartnerView, str | None]]:
        """Every partner with its sealed webhook secret: what the delivery worker reads."""
        async with self._db.reader() as s:
            rows = (await s.execute(select(Partner).order_by(col(Partner.client_id)))).scalars()
            return [(PartnerView.of(r), r.webhook_secret_sealed) for r in rows]

    async def _update(self, client_id: str, **values: object) -> None:
        async def work(s: UnitOfWork) -> None:
            result = await s.execute(
                update(Partner)
                .where(col(Partner.client_id) == client_id, col(Partner.source) == "cli")
                .values(updated_at=utcnow(), **values)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise RegistryError(
                    f"no CLI partner {client_id} (config partners change in the config file)",
                )

        await self._db.run_in_transaction(work)

    async def all(self) -> list[PartnerView]:
        async with self._db.reader() as s:
            rows = (await s.execute(select(Partner).order_by(col(Partner.client_id)))).scalars()
            return [PartnerView.of(r) for r in rows]
