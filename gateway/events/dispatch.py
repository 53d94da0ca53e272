"""The dispatcher: from the outbox to each entitled partner's queue (``partner_events``).

One dispatcher works at a time (PostgreSQL: a transaction-scoped advisory lock, tried, not
waited for; SQLite has one writer anyway), so the partner rows it inserts get positions in
the order their events committed, and a feed cursor never skips a row that commits late.
Which partners receive an event is decided here, from the audience the event was written
with and the partners' entitlements now (``Entitlements.sees``, the rule of lookups by id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.outbox import AccountEvent, view
from gateway.partners.entitlements import Entitlements
from gateway.partners.registry import PartnerView
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import AccountEventRow, PartnerEventRow, utcnow

PENDING, DELIVERED, FAILED, FEED = "pending", "delivered", "failed", "feed"
"""A partner row's status: a webhook will carry it; it did; it gave up; no webhook (feed only)."""

_LOCK = text("SELECT pg_try_advisory_xact_lock(7261500419383227397)")
_PARTNER_EVENTS: Any = PartnerEventRow.__table__  # type: ignore[attr-defined]


async def dispatch_once(
    db: Database, partners: Sequence[PartnerView], rules: Entitlements, batch: int = 500
) -> int:
    """Dispatch up to ``batch`` events, oldest first; how many (0: nothing to do, or another
    process is dispatching)."""
    live = [p for p in partners if not p.disabled]

    async def work(s: UnitOfWork) -> int:
        if not await _exclusive(s):
            return 0
        events = [view(r) for r in (await s.execute(_undispatched(batch))).scalars()]
        if not events:
            return 0
        rows = _partner_rows(events, live, rules)
        if rows:  # one insert, rows in event order: positions follow it
            await s.execute(insert(_PARTNER_EVENTS), rows)
        seqs = [e.seq for e in events]
        await s.execute(
            update(AccountEventRow)
            .where(col(AccountEventRow.seq).in_(seqs))
            .values(dispatched=True)
        )
        return len(events)

    return await db.run_in_transaction(work)


def _undispatched(batch: int) -> Any:
    return (
        select(AccountEventRow)
        .where(col(AccountEventRow.dispatched).is_(False))
        .order_by(col(AccountEventRow.seq))
        .limit(batch)
    )


def _partner_rows(
    events: Sequence[AccountEvent], partners: Sequence[PartnerView], rules: Entitlements
) -> list[dict[str, Any]]:
    """Each event for each partner entitled to it, in event order."""
    now = utcnow()
    return [
        {
            "partner_id": p.client_id,
            "event_seq": e.seq,
            "account_id": e.account_id,
            "status": PENDING if p.webhook_url else FEED,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for e in events
        for p in partners
        if rules.sees(p, e.audience)
    ]


async def _exclusive(s: AsyncSession) -> bool:
    bind = s.bind
    if bind is None or bind.dialect.name != "postgresql":
        return True
    return bool((await s.execute(_LOCK)).scalar())
