"""Audit events and the client facts every mutation records for risk control; reading them
back, removing personal fields of an erased account's events, and pruning expired ones."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Insert, bindparam, delete, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from gateway.store.db import Database, UnitOfWork
from gateway.store.driver import SyncDriver
from gateway.store.models import AuditEvent, utcnow

PERSONAL_FIELDS = ("platform", "channel", "device_param", "ip", "user_agent")
"""What an erased account's events lose; kind, time, app and the account id (a pseudonym now)
stay for the retention period."""
_TABLE: Any = AuditEvent.__table__  # type: ignore[attr-defined]
_INSERT = insert(_TABLE)
_OWN_COLUMNS = ("id", "kind", *PERSONAL_FIELDS, "detail", "created_at")


@dataclass(frozen=True)
class ClientInfo:
    platform: str
    channel: str | None = None
    device_param: str | None = None
    ip: str | None = None
    user_agent: str | None = None


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What no database (PostgreSQL refuses NUL) or UTF-8 encoder (lone surrogates) accepts."""


def storable(text: str | None) -> str | None:
    """``text`` as every database and log can hold it: NUL and lone surrogates replaced. The API
    refuses such input already; this keeps an audit row from being lost to one that slipped by."""
    return UNSTORABLE.sub("\ufffd", text) if text else text


def record(
    session: AsyncSession,
    kind: str,
    client: ClientInfo | None,
    *,
    account_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    app_key: str | None = None,
    **detail: Any,
) -> None:
    """Add an event to the caller's transaction: it lands exactly when the change it describes
    (the rows of one transaction go out in one insert when it commits; see ``_write``)."""
    row = event_row(kind, client, **detail)
    row.update(account_id=account_id, session_id=session_id, app_key=app_key)
    session.info.setdefault(_PENDING, []).append(row)


def event_row(kind: str, client: ClientInfo | None, **detail: Any) -> dict[str, Any]:
    """An event's own columns (all but whose account, session and app it was), storable."""
    return {
        "id": uuid.uuid4(),
        "kind": kind,
        "platform": storable(client.platform) if client else None,
        "channel": storable(client.channel) if client else None,
        "device_param": storable(client.device_param) if client else None,
        "ip": storable(client.ip) if client else None,
        "user_agent": storable(client.user_agent) if client else None,
        "detail": {k: storable(v) if isinstance(v, str) else v for k, v in detail.items()},
        "created_at": utcnow(),
    }


def insert_on(conn: SyncDriver, row: dict[str, Any]) -> None:
    """An event written at once on a synchronous connection, inside its caller's transaction
    (SQLite's units of work run whole on a worker thread); ``row`` from :func:`event_row`, with
    its account, session and app."""
    conn.execute(_INSERT, row)


def insert_event_when(given: dict[str, Any], when: Any, prefix: str = "event_") -> Insert:
    """For a write that is one statement (a PostgreSQL data-modifying CTE): the insert of its
    event, made only when ``when`` holds. ``given`` has the columns the statement decides as
    SQL expressions (the account, session and app, at least); the rest are bound parameters
    named ``prefix`` + column, from :func:`event_row`."""
    bound = [name for name in _OWN_COLUMNS if name not in given]
    own = [bindparam(prefix + name, type_=_TABLE.c[name].type) for name in bound]
    rows = select(*given.values(), *own).where(when)
    return insert(_TABLE).from_select([*given, *bound], rows)


_PENDING = "gateway.audit.pending"


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    """One Core insert for a transaction's events, just before it commits: no ORM objects on
    the hot paths, and a rolled-back transaction takes its events with it."""
    rows = session.info.pop(_PENDING, None)
    if rows:  # on the table and the connection: no ORM bulk path, no ORM execute machinery
        session.connection().execute(_INSERT, rows[0] if len(rows) == 1 else rows)


class Actor(Protocol):
    """Who acts in an authenticated mutation (a logged-in viewer)."""

    @property
    def account_id(self) -> uuid.UUID: ...

    @property
    def session_id(self) -> uuid.UUID | None: ...

    @property
    def app_key(self) -> str | None: ...


def record_by(
    session: AsyncSession, kind: str, client: ClientInfo | None, actor: Actor, **detail: Any
) -> None:
    record(
        session,
        kind,
        client,
        account_id=actor.account_id,
        session_id=actor.session_id,
        app_key=actor.app_key,
        **detail,
    )


@dataclass(frozen=True)
class AuditView:
    id: uuid.UUID
    kind: str
    created_at: datetime
    account_id: uuid.UUID | None
    session_id: uuid.UUID | None
    app_key: str | None
    platform: str | None
    channel: str | None
    device_param: str | None
    ip: str | None
    user_agent: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "kind": self.kind,
            "at": self.created_at.isoformat(),
            "account": str(self.account_id) if self.account_id else None,
            "session": str(self.session_id) if self.session_id else None,
            "app": self.app_key,
            "platform": self.platform,
            "channel": self.channel,
            "deviceParam": self.device_param,
            "ip": self.ip,
            "userAgent": self.user_agent,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditQuery:
    account_ids: tuple[uuid.UUID, ...] = ()
    kind: str | None = None
    since: datetime | None = None
    limit: int = 100
    app_key: str | None = None
    operator: str | None = None  # the ``operator`` of the event's detail
    until: datetime | None = None  # exclusive
    offset: int = 0


async def scrub(s: AsyncSession, account_ids: list[uuid.UUID]) -> None:
    """Inside the caller's transaction: the personal fields of these accounts' events."""
    await s.run_sync(_write)  # this transaction's own events are scrubbed too
    await s.execute(
        update(AuditEvent)
        .where(col(AuditEvent.account_id).in_(account_ids))
        .values(**dict.fromkeys(PERSONAL_FIELDS))
    )


async def read(db: Database, query: AuditQuery) -> list[AuditView]:
    """Events matching ``query``, newest first."""
    statement = select(AuditEvent)
    if query.account_ids:
        statement = statement.where(col(AuditEvent.account_id).in_(query.account_ids))
    if query.kind:
        statement = statement.where(col(AuditEvent.kind) == query.kind)
    if query.since:
        statement = statement.where(col(AuditEvent.created_at) >= query.since)
    if query.until:
        statement = statement.where(col(AuditEvent.created_at) < query.until)
    if query.app_key:
        statement = statement.where(col(AuditEvent.app_key) == query.app_key)
    if query.operator:
        operator = col(AuditEvent.detail)["operator"].as_string()
        statement = statement.where(operator == query.operator)
    statement = statement.order_by(col(AuditEvent.created_at).desc(), col(AuditEvent.id))
    statement = statement.offset(query.offset).limit(query.limit)
    async with db.reader() as s:
        rows = (await s.execute(statement)).scalars().all()
    return [_view(r) for r in rows]


def _view(r: AuditEvent) -> AuditView:
    return AuditView(
        r.id, r.kind, r.created_at, r.account_id, r.session_id, r.app_key, r.platform,
        r.channel, r.device_param, r.ip, r.user_agent, dict(r.detail or {}),
    )  # fmt: skip


async def prune(db: Database, before: datetime) -> int:
    """Remove events older than ``before``; how many went."""

    async def work(s: UnitOfWork) -> int:
        result = await s.execute(delete(AuditEvent).where(col(AuditEvent.created_at) < before))
        return int(result.rowcount)  # type: ignore[attr-defined]

    return await db.run_in_transaction(work)


@dataclass(frozen=True)
class Tallied:
    """One event as the console's dashboard counts it."""

    kind: str
    app_key: str | None
    created_at: datetime
    reason: str | None  # a failure's ``reason`` (or ``code``) from its detail


async def tallied(
    db: Database, since: datetime, kinds: tuple[str, ...], limit: int = 200_000
) -> list[Tallied]:
    """The events of ``kinds`` since ``since`` (at most ``limit``, newest first): four columns,
    counted by the caller (hours differ by dialect; a day's events fit in memory)."""
    reason = col(AuditEvent.detail)["reason"].as_string()
    statement = (
        select(col(AuditEvent.kind), col(AuditEvent.app_key), col(AuditEvent.created_at), reason)
        .where(col(AuditEvent.created_at) >= since, col(AuditEvent.kind).in_(kinds))
        .order_by(col(AuditEvent.created_at).desc())
        .limit(limit)
    )
    async with db.reader() as s:
        rows = (await s.execute(statement)).all()
    return [Tallied(r[0], r[1], _aware(r[2]), r[3]) for r in rows]


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
