"""The SQL of the pull feed and of retention: a partner's rows of ``partner_events`` by
position, whether the outbox holds undispatched events, and the pruning of old events.

Functions here answer domain records (``gateway.outbox.AccountEvent``), never rows, and never
commit on a caller's behalf: each opens its own reader or unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import col

from gateway.events.dispatch import PENDING
from gateway.outbox import AccountEvent, view
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import AccountEventRow, PartnerEventRow


@dataclass(frozen=True)
class Positioned:
    """An event at its position in one partner's feed."""

    position: int
    event: AccountEvent


@dataclass(frozen=True)
class Pruned:
    """What one retention round removed: events, their partner rows, and how many of those
    rows were still waiting for a webhook (given up: older than the retention)."""

    events: int
    partner_rows: int
    undelivered: int


async def page(db: Database, partner_id: str, after: int, first: int) -> list[Positioned]:
    """Up to ``first + 1`` of the partner's rows after position ``after``, in order (the extra
    row only says whether there is a next page). Any status: the feed shows what the partner
    receives, whether a webhook carried it or not."""
    query = (
        select(col(PartnerEventRow.position), AccountEventRow)
        .join(AccountEventRow, col(AccountEventRow.seq) == col(PartnerEventRow.event_seq))
        .where(col(PartnerEventRow.partner_id) == partner_id)
        .where(col(PartnerEventRow.position) > after)
        .order_by(col(PartnerEventRow.position))
        .limit(first + 1)
    )
    async with db.reader() as s:
        rows = (await s.execute(query)).all()
    return [Positioned(int(position or 0), view(row)) for position, row in rows]


async def undispatched(db: Database) -> bool:
    """Does the outbox hold an event no dispatcher has handled yet? One indexed probe, so a
    feed read can afford it every time."""
    query = select(col(AccountEventRow.seq)).where(col(AccountEventRow.dispatched).is_(False))
    async with db.reader() as s:
        return (await s.execute(query.limit(1))).first() is not None


async def prune(db: Database, before: datetime) -> Pruned:
    """Remove events that occurred before ``before``, with every partner row of them, in one
    unit of work (whatever their status: see ``gateway.events.retention``)."""
    old = select(col(AccountEventRow.seq)).where(col(AccountEventRow.occurred_at) < before)
    rows: Any = col(PartnerEventRow.event_seq).in_(old)

    async def work(s: UnitOfWork) -> Pruned:
        waiting = select(func.count()).select_from(PartnerEventRow)
        waiting = waiting.where(rows, col(PartnerEventRow.status) == PENDING)
        undelivered = int((await s.execute(waiting)).scalar_one())
        partner_rows = await s.execute(delete(PartnerEventRow).where(rows))
        events = await s.execute(
            delete(AccountEventRow).where(col(AccountEventRow.occurred_at) < before)
        )
        return Pruned(
            int(events.rowcount),  # type: ignore[attr-defined]
            int(partner_rows.rowcount),  # type: ignore[attr-defined]
            undelivered,
        )

    return await db.run_in_transaction(work)
