"""The console's tables (``operators``, ``operator_sessions``): the only SQL of the console.
Functions take the caller's unit of work and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.console.model import OperatorView, Role
from gateway.store.models import OperatorRow, OperatorSessionRow


def view(row: OperatorRow) -> OperatorView:
    return OperatorView(
        row.id, row.name, Role(row.role), row.must_change, row.disabled, row.created_at
    )


async def by_name(s: AsyncSession, name: str) -> OperatorRow | None:
    found = await s.execute(select(OperatorRow).where(col(OperatorRow.name) == name))
    return found.scalar_one_or_none()


async def all_operators(s: AsyncSession) -> list[OperatorRow]:
    return list((await s.execute(select(OperatorRow).order_by(col(OperatorRow.name)))).scalars())


async def update_operator(s: AsyncSession, operator_id: uuid.UUID, **values: Any) -> None:
    await s.execute(update(OperatorRow).where(col(OperatorRow.id) == operator_id).values(**values))


async def spend_step(s: AsyncSession, operator_id: uuid.UUID, step: int) -> bool:
    """Keep ``step`` as the last accepted one, unless it (or a later one) was used already:
    one statement, so two processes racing with one code cannot both win."""
    result: Any = await s.execute(
        update(OperatorRow)
        .where(
            col(OperatorRow.id) == operator_id,
            or_(col(OperatorRow.totp_step).is_(None), col(OperatorRow.totp_step) < step),
        )
        .values(totp_step=step)
    )
    return bool(result.rowcount == 1)


async def end_sessions(s: AsyncSession, operator_id: uuid.UUID) -> None:
    await s.execute(
        delete(OperatorSessionRow).where(col(OperatorSessionRow.operator_id) == operator_id)
    )


async def end_session(s: AsyncSession, secret_hash: str) -> None:
    await s.execute(
        delete(OperatorSessionRow).where(col(OperatorSessionRow.secret_hash) == secret_hash)
    )


def add_session(s: AsyncSession, secret_hash: str, operator_id: uuid.UUID, now: datetime) -> None:
    s.add(
        OperatorSessionRow(
            secret_hash=secret_hash, operator_id=operator_id, created_at=now, last_seen_at=now
        )
    )


async def session_of(
    s: AsyncSession, secret_hash: str
) -> tuple[OperatorSessionRow, OperatorRow] | None:
    found = await s.execute(
        select(OperatorSessionRow, OperatorRow)
        .join(OperatorRow, col(OperatorRow.id) == col(OperatorSessionRow.operator_id))
        .where(col(OperatorSessionRow.secret_hash) == secret_hash)
    )
    row = found.one_or_none()
    return (row[0], row[1]) if row else None


async def touch(s: AsyncSession, secret_hash: str, now: datetime) -> None:
    await s.execute(
        update(OperatorSessionRow)
        .where(col(OperatorSessionRow.secret_hash) == secret_hash)
        .values(last_seen_at=now)
    )
