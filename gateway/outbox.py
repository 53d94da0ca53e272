"""Account events, appended in the same transaction as the change they describe (a
transactional outbox): a change without its event, or an event without its change, cannot
commit. Delivery to partners (``gateway.events``) reads the table afterwards, in its own time,
so a slow receiver never slows a login and a crash between commit and delivery loses nothing.

``accounts`` is the one writer (it alone changes the graph); the event's audience (the apps and
platforms the account could be reached through when it was written) is stored with it, and the
dispatcher decides from it, by the partners' entitlements, who receives the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Insert, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.store.db import Database, execute_core
from gateway.store.driver import SyncDriver
from gateway.store.models import AccountEventRow, utcnow


class EventType(StrEnum):
    ACCOUNT_CREATED = "account.created"
    ACCOUNT_MERGED = "account.merged"
    ACCOUNT_DISABLED = "account.disabled"
    ACCOUNT_ENABLED = "account.enabled"
    DELETION_REQUESTED = "account.deletion_requested"
    DELETION_CANCELLED = "account.deletion_cancelled"
    ACCOUNT_DELETED = "account.deleted"
    IDENTITY_LINKED = "identity.linked"
    IDENTITY_UNLINKED = "identity.unlinked"
    PHONE_BOUND = "phone.bound"
    PHONE_UNBOUND = "phone.unbound"


IDENTIFIER = "subject"
"""The key of a raw identifier (openid, unionid, username, phone) inside an event's stored
``data``: shown to a partner only where its entitlements allow, removed when the account is
erased (:func:`scrub`)."""

_TABLE: Any = AccountEventRow.__table__  # type: ignore[attr-defined]
_INSERT = insert(_TABLE)
_OWN_COLUMNS = ("id", "type", "occurred_at", "data", "appids", "platforms", "dispatched")


@dataclass(frozen=True)
class Audience:
    """Whom an event may concern: the appids of the account's openids and the platforms of its
    unionids, as they were when the event was written."""

    appids: frozenset[str] = frozenset()
    platforms: frozenset[str] = frozenset()

    def __or__(self, other: Audience) -> Audience:
        return Audience(self.appids | other.appids, self.platforms | other.platforms)


@dataclass(frozen=True)
class AccountEvent:
    """An event as stored: ``data`` holds raw identifiers under :data:`IDENTIFIER`; what a
    partner sees of it is decided above (``gateway.events``)."""

    seq: int
    id: uuid.UUID
    type: EventType
    account_id: uuid.UUID
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    audience: Audience = Audience()


def row(
    type: EventType,
    account_id: uuid.UUID,
    audience: Audience,
    data: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """An event's columns, for :func:`append`, :func:`insert_on` or :func:`insert_when`."""
    return {
        "id": uuid.uuid4(),
        "type": type.value,
        "account_id": account_id,
        "occurred_at": now or utcnow(),
        "data": data,
        "appids": sorted(audience.appids),
        "platforms": sorted(audience.platforms),
        "dispatched": False,
    }


async def append(
    s: AsyncSession,
    type: EventType,
    account_id: uuid.UUID,
    audience: Audience,
    data: dict[str, Any] | None = None,
) -> None:
    """Write an event in the caller's transaction, at once: inside a savepoint it goes with
    the savepoint (a lost identity race rolls its ``account.created`` back too), and its
    ``seq`` is taken under the locks of the change, so one account's events are numbered in
    the order they happen. Changes are rare next to logins, so the round trip is cheap; the
    one-statement login writes its event inside its statement (:func:`insert_when`)."""
    await append_rows(s, [row(type, account_id, audience, data or {})])


async def append_rows(s: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Several events (:func:`row`) in the caller's transaction, in one statement (one round
    trip), as :func:`append` writes one."""
    if rows:
        await execute_core(s, _INSERT, rows[0] if len(rows) == 1 else list(rows))


def insert_on(conn: SyncDriver, rows: Sequence[dict[str, Any]]) -> None:
    """Events written at once on a synchronous connection, inside its caller's transaction
    (SQLite's one-statement login runs whole on a worker thread)."""
    if rows:
        conn.execute(_INSERT, rows[0] if len(rows) == 1 else list(rows))


def insert_when(given: dict[str, Any], when: Any, prefix: str = "outbox_") -> Insert:
    """For a write that is one statement (a PostgreSQL data-modifying CTE): the insert of one
    event, made only when ``when`` holds. ``given`` has the columns the statement decides as
    SQL expressions (the account, at least); the rest are bound parameters named ``prefix`` +
    column, from :func:`row`."""
    bound = [name for name in _OWN_COLUMNS if name not in given]
    own = [bindparam(prefix + name, type_=_TABLE.c[name].type) for name in bound]
    rows = select(*given.values(), *own).where(when)
    return insert(_TABLE).from_select([*given, *bound], rows)


async def scrub(s: AsyncSession, account_ids: Iterable[uuid.UUID]) -> None:
    """Inside an erasure's transaction: the raw identifiers of these accounts' events go (the
    events stay, as facts about a pseudonym, until their retention ends)."""
    ids = list(account_ids)
    query = select(AccountEventRow).where(col(AccountEventRow.account_id).in_(ids))
    for found in (await s.execute(query)).scalars():
        data = _without_identifiers(found.data)
        if data != found.data:
            found.data = data
    await s.flush()


def _without_identifiers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_identifiers(v) for k, v in value.items() if k != IDENTIFIER}
    if isinstance(value, list):
        return [_without_identifiers(v) for v in value]
    return value


def view(r: AccountEventRow) -> AccountEvent:
    return AccountEvent(
        seq=r.seq or 0,
        id=r.id,
        type=EventType(r.type),
        account_id=r.account_id,
        occurred_at=r.occurred_at,
        data=dict(r.data or {}),
        audience=Audience(frozenset(r.appids or ()), frozenset(r.platforms or ())),
    )


async def read(
    db: Database,
    *,
    account_ids: Sequence[uuid.UUID] = (),
    type: EventType | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AccountEvent]:
    """Events in the order they were written (oldest first), for operators and tests."""
    query = select(AccountEventRow)
    if account_ids:
        query = query.where(col(AccountEventRow.account_id).in_(account_ids))
    if type is not None:
        query = query.where(col(AccountEventRow.type) == type.value)
    if since is not None:
        query = query.where(col(AccountEventRow.occurred_at) >= since)
    query = query.order_by(col(AccountEventRow.seq)).limit(limit)
    async with db.reader() as s:
        return [view(r) for r in (await s.execute(query)).scalars()]
