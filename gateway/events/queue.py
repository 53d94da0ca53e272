"""The webhook queue: the ``pending`` rows of ``partner_events``, claimed, sent, recorded.

A claim is one short transaction: the due rows (on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so
processes claiming at once take different rows; SQLite's writer lock lets one claim at a time)
get their attempt counted and a lease (``next_attempt_at`` moved past the send's timeout), so a
claim whose process dies is due again when the lease ends. The send happens outside any
transaction; its outcome is recorded only on the claim it belongs to (same attempt number), so
a late answer never overwrites a newer claim's.

Per partner and account, a row is due only when no earlier row is still ``pending``: a later
event waits until an earlier one has been delivered or has failed for good.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, func, select, update
from sqlmodel import col

from gateway.events.dispatch import DELIVERED, FAILED, FEED, PENDING
from gateway.outbox import AccountEvent, view
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import AccountEventRow, PartnerEventRow

_T: Any = PartnerEventRow.__table__  # type: ignore[attr-defined]
_EVENTS: Any = AccountEventRow.__table__  # type: ignore[attr-defined]
_ERROR_LENGTH = 256


@dataclass(frozen=True)
class Claim:
    """One delivery attempt this process owns: ``attempt`` is its number, and its token."""

    position: int
    partner_id: str
    attempt: int
    event: AccountEvent


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to; ``final``: no retry will help (the partner is disabled)."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False


def _due_now() -> list[Any]:
    """A row is due: pending, its time has come, no earlier row of its partner and account
    still pending (each probe on ``ix_partner_events_order``)."""
    earlier = _T.alias("earlier")
    blocked = exists().where(
        earlier.c.partner_id == _T.c.partner_id,
        earlier.c.account_id == _T.c.account_id,
        earlier.c.status == PENDING,
        earlier.c.position < _T.c.position,
    )
    return [_T.c.status == PENDING, _T.c.next_attempt_at <= bindparam("now"), ~blocked]


def _due(limit: int) -> Select[Any]:
    return (
        select(_T.c.position)
        .where(*_due_now())
        .order_by(_T.c.position)
        .limit(limit)
        .with_for_update(skip_locked=True, of=_T)
    )


_IDLE = select(
    exists().where(_EVENTS.c.dispatched.is_(False)),
    exists().where(*_due_now()),
)


@dataclass(frozen=True)
class Work:
    dispatch: bool  # events not yet dispatched to partners
    deliver: bool  # deliveries due

    def __bool__(self) -> bool:
        return self.dispatch or self.deliver


async def anything_to_do(db: Database, now: datetime) -> Work:
    """One indexed read: events to dispatch, deliveries due. What an idle worker costs."""
    ((dispatch, deliver),) = await db.read(_IDLE, {"now": now})
    return Work(bool(dispatch), bool(deliver))


async def claim(db: Database, now: datetime, lease: float, limit: int) -> list[Claim]:
    """Up to ``limit`` due deliveries, oldest first, each with its attempt counted and leased
    for ``lease`` seconds."""
    statement = (
        update(_T)
        .where(_T.c.position.in_(_due(limit)))
        .values(attempts=_T.c.attempts + 1, next_attempt_at=now + timedelta(seconds=lease))
        .returning(_T.c.position, _T.c.partner_id, _T.c.event_seq, _T.c.attempts)
    )

    async def work(s: UnitOfWork) -> list[Claim]:
        claimed = (await s.execute(statement, {"now": now})).all()
        if not claimed:
            return []
        seqs = {row.event_seq for row in claimed}
        query = select(AccountEventRow).where(col(AccountEventRow.seq).in_(seqs))
        events = {e.seq: view(e) for e in (await s.execute(query)).scalars()}
        return [Claim(r.position, r.partner_id, r.attempts, events[r.event_seq]) for r in claimed]

    claims = await db.run_in_transaction(work)
    return sorted(claims, key=lambda c: c.position)


async def record(
    db: Database, done: Claim, outcome: Outcome, now: datetime, retry: Sequence[float]
) -> str:
    """The attempt's outcome; the row's status now (``pending`` again for a retry)."""
    values: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "last_error": outcome.error[:_ERROR_LENGTH] if outcome.error else None,
    }
    if outcome.delivered:
        values |= {"status": DELIVERED, "delivered_at": now}
    elif outcome.final or done.attempt > len(retry):
        values |= {"status": FAILED, "next_attempt_at": now}
    else:
        values["next_attempt_at"] = now + timedelta(seconds=retry[done.attempt - 1])
    await _settle(db, done, values)
    return str(values.get("status", PENDING))


async def to_feed(db: Database, done: Claim) -> None:
    """The partner has no webhook any more: the event stays in its feed only."""
    await _settle(db, done, {"status": FEED, "last_error": "no webhook"})


async def _settle(db: Database, done: Claim, values: dict[str, Any]) -> None:
    mine = and_(
        _T.c.position == done.position,
        _T.c.attempts == done.attempt,
        _T.c.status == PENDING,
    )
    await db.run_in_transaction(lambda s: s.execute(update(_T).where(mine).values(**values)))


async def pending_count(db: Database) -> int:
    query = select(func.count()).select_from(_T).where(_T.c.status == PENDING)
    return int((await db.read(query))[0][0])


@dataclass(frozen=True)
class Filter:
    partner: str | None = None
    status: str | None = None
    type: str | None = None
    limit: int = 1000
    account: uuid.UUID | None = None  # one person's events (the console's account page)
    newest_first: bool = False


async def listing(db: Database, wanted: Filter) -> list[dict[str, Any]]:
    """Deliveries, oldest first (or newest), as operators read them (``gateway events
    list``, the console)."""
    query = select(_T, _EVENTS.c.id, _EVENTS.c.type).join(_EVENTS, _EVENTS.c.seq == _T.c.event_seq)
    if wanted.partner:
        query = query.where(_T.c.partner_id == wanted.partner)
    if wanted.status:
        query = query.where(_T.c.status == wanted.status)
    if wanted.type:
        query = query.where(_EVENTS.c.type == wanted.type)
    if wanted.account:
        query = query.where(_T.c.account_id == wanted.account)
    order = _T.c.position.desc() if wanted.newest_first else _T.c.position
    query = query.order_by(order).limit(wanted.limit)
    return [_listed(row) for row in await db.read(query)]


def _listed(row: Any) -> dict[str, Any]:
    pending = row.status == PENDING
    return {
        "event": str(row.id),
        "type": row.type,
        "partner": row.partner_id,
        "status": row.status,
        "attempts": row.attempts,
        "lastStatusCode": row.last_status_code,
        "lastError": row.last_error,
        "nextAttemptAt": _iso(row.next_attempt_at) if pending else None,
        "deliveredAt": _iso(row.delivered_at) if row.delivered_at else None,
    }


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def redeliver(
    db: Database,
    now: datetime,
    *,
    event_id: uuid.UUID | None = None,
    partner: str | None = None,
    since: datetime | None = None,
) -> int:
    """Send again (a fresh retry schedule): one event to every partner that received it, or a
    partner's events since a time. How many deliveries are pending again."""
    events = select(_EVENTS.c.seq)
    if event_id is not None:
        events = events.where(_EVENTS.c.id == event_id)
    if since is not None:
        events = events.where(_EVENTS.c.occurred_at >= since)
    chosen = [_T.c.event_seq.in_(events.scalar_subquery()), _T.c.status != PENDING]
    if partner is not None:
        chosen.append(_T.c.partner_id == partner)
    fresh = {
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_status_code": None,
        "last_error": None,
        "delivered_at": None,
    }

    async def work(s: UnitOfWork) -> int:
        done = await s.execute(update(_T).where(*chosen).values(**fresh))
        return int(done.rowcount)  # type: ignore[attr-defined]

    return await db.run_in_transaction(work)
