"""Scan tickets in the database (``web_login_tickets``): every backend has one, so every
deployment (one SQLite process, or replicas on PostgreSQL with or without Redis) shares one
truth about a ticket, and a restart forgets none in flight.

Each change of state is one conditional UPDATE (the state it moves from, the time not past),
so two approvals, or two collections racing each other, cannot both win: the loser's UPDATE
finds no row.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.store.broadcast import changed
from gateway.store.models import WebLoginTicketRow

SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""A ticket or a binding secret: ``secrets.token_urlsafe(32)``."""


class Status(StrEnum):
    """A ticket's life; ``COLLECTED`` is never shown: a spent ticket answers ``EXPIRED``."""

    WAITING = "WAITING"
    SCANNED = "SCANNED"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    EXPIRED = "EXPIRED"
    COLLECTED = "COLLECTED"


OPEN = (Status.WAITING.value, Status.SCANNED.value)
"""States a person in the mini-program may still act on (and a browser waits on)."""


@dataclass(frozen=True)
class Ticket:
    """A ticket as the use case sees it; ``status`` already says EXPIRED once time is up."""

    key: str  # the ticket's digest: its id here and its wake-up name
    scene: str
    app_key: str
    status: Status
    account_id: uuid.UUID | None
    origin: str | None
    ip: str | None
    user_agent: str | None
    created_at: float
    expires_at: float
    binding_hash: str


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_scene() -> str:
    """16 characters of the URL-safe alphabet, which wxacode's scene charset includes."""
    return secrets.token_urlsafe(12)


def digest(secret: str) -> str:
    """SHA-256 is enough: the secrets are 256-bit random, nothing to guess or reverse."""
    return hashlib.sha256(secret.encode()).hexdigest()


def wake_name(key: str) -> str:
    """The broadcast name of a ticket's changes (``gateway.store.broadcast``)."""
    return f"w:{key[:32]}"


def _ticket(row: Any, now: float) -> Ticket:
    status = Status(row.status)
    if status == Status.COLLECTED or (status != Status.DENIED and row.expires_at <= now):
        status = Status.EXPIRED
    return Ticket(
        key=row.ticket_hash,
        scene=row.scene,
        app_key=row.app_key,
        status=status,
        account_id=row.account_id,
        origin=row.origin,
        ip=row.ip,
        user_agent=row.user_agent,
        created_at=row.created_at,
        expires_at=row.expires_at,
        binding_hash=row.binding_hash,
    )


async def add(s: AsyncSession, row: WebLoginTicketRow, now: float) -> None:
    """A new ticket; dead tickets (a minute past their end) go on the way, by the index on
    ``expires_at``: the browser facts they hold are kept no longer than needed."""
    await s.execute(delete(WebLoginTicketRow).where(col(WebLoginTicketRow.expires_at) <= now - 60))
    s.add(row)


async def by_key(s: AsyncSession, key: str, now: float) -> Ticket | None:
    found = await s.execute(
        select(WebLoginTicketRow).where(col(WebLoginTicketRow.ticket_hash) == key)
    )
    row = found.scalar_one_or_none()
    return None if row is None else _ticket(row, now)


async def by_scene(s: AsyncSession, scene: str, now: float) -> Ticket | None:
    found = await s.execute(select(WebLoginTicketRow).where(col(WebLoginTicketRow.scene) == scene))
    row = found.scalar_one_or_none()
    return None if row is None else _ticket(row, now)


async def move(
    s: AsyncSession,
    now: float,
    *,
    to: Status,
    where: dict[str, Any],
    from_states: tuple[str, ...],
    account_id: uuid.UUID | None = None,
) -> str | None:
    """Move the live ticket matching ``where`` (column: value) from one of ``from_states``
    to ``to``; its key, or None when no live ticket was in such a state."""
    conditions = [getattr(WebLoginTicketRow, name) == value for name, value in where.items()]
    values: dict[str, Any] = {"status": to.value}
    if account_id is not None:
        values["account_id"] = account_id
    statement = (
        update(WebLoginTicketRow)
        .where(
            *conditions,
            col(WebLoginTicketRow.status).in_(from_states),
            col(WebLoginTicketRow.expires_at) > now,
        )
        .values(**values)
        .returning(col(WebLoginTicketRow.ticket_hash))
    )
    key = (await s.execute(statement)).scalar_one_or_none()
    if key is not None:
        changed(s, [wake_name(key)])
    return key
