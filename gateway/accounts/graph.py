"""Find-or-create over the identity index, safe under concurrency.

The unique index on ``(kind, scope, subject)`` decides races: every insert runs in a savepoint,
and the loser of a race rolls back to it and reads what the winner wrote (social-core's order:
find by identifiers, then sign in or create, then add newly seen identifiers).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts import announce
from gateway.accounts.model import (
    AccountConflict,
    AccountStatus,
    IdentityKey,
    IdentityKind,
    Resolution,
)
from gateway.accounts.tables import Account, Identity
from gateway.store.db import execute_core
from gateway.store.models import utcnow

_ATTEMPTS = 4

Merger = Callable[[set[uuid.UUID]], Awaitable[uuid.UUID]]


async def find(session: AsyncSession, keys: list[IdentityKey]) -> dict[IdentityKey, Identity]:
    # populate_existing: a retry after a race or a merge must see rows as they are now, not as
    # this session's identity map remembers them
    query = select(Identity).where(_any_of(keys)).execution_options(populate_existing=True)
    rows = (await session.execute(query)).scalars().all()
    return {IdentityKey(IdentityKind(r.kind), r.scope, r.subject): r for r in rows}


async def _owners_by_key(
    session: AsyncSession, keys: list[IdentityKey]
) -> dict[IdentityKey, uuid.UUID]:
    """Who owns each known key: Core columns, no ORM objects (the returning user's path), and
    a statement built once per number of keys (every login asks, with one or two keys)."""
    params = key_params(keys)
    rows = (await execute_core(session, owners_statement(len(keys)), params)).all()
    return {IdentityKey(IdentityKind(r[0]), r[1], r[2]): r[3] for r in rows}


def key_params(keys: list[IdentityKey]) -> dict[str, Any]:
    """``keys`` bound for :func:`owners_statement`."""
    params: dict[str, Any] = {}
    for i, k in enumerate(keys):
        params |= {f"kind{i}": k.kind, f"scope{i}": k.scope, f"subject{i}": k.subject}
    return params


@functools.cache
def owners_statement(count: int) -> Any:
    """Who owns which of ``count`` keys (``kind{i}``, ``scope{i}``, ``subject{i}``): built once
    per number of keys (every login asks, with one or two keys)."""
    matches = (
        and_(
            col(Identity.kind) == bindparam(f"kind{i}"),
            col(Identity.scope) == bindparam(f"scope{i}"),
            col(Identity.subject) == bindparam(f"subject{i}"),
        )
        for i in range(count)
    )
    columns = (Identity.kind, Identity.scope, Identity.subject, Identity.account_id)
    return select(*(col(c) for c in columns)).where(or_(*matches))


def _any_of(keys: list[IdentityKey]) -> Any:
    return or_(
        *(
            and_(
                col(Identity.kind) == k.kind,
                col(Identity.scope) == k.scope,
                col(Identity.subject) == k.subject,
            )
            for k in keys
        )
    )


async def owners(session: AsyncSession, keys: list[IdentityKey]) -> set[uuid.UUID]:
    return set((await _owners_by_key(session, keys)).values())


async def find_or_create(
    session: AsyncSession,
    keys: list[IdentityKey],
    app_key: str | None,
    *,
    merge: Merger | None = None,
) -> Resolution:
    """Resolve ``keys`` to one account, creating it or attaching missing keys as needed.

    When the keys already belong to several accounts, ``merge`` (if given: the caller holds
    proof they are one person) folds them into one; without it that is an ``AccountConflict``.
    """
    merged = False
    known = await _owners_by_key(session, keys)
    owner_ids = set(known.values())
    if len(owner_ids) == 1 and len(known) == len(keys):
        # the common case, a returning user: nothing to write to the graph, no lock to take
        return Resolution(next(iter(owner_ids)), False)
    await serialise(session, keys)
    for _ in range(_ATTEMPTS):
        found = await _owners_by_key(session, keys)
        owner_ids = set(found.values())
        if len(owner_ids) > 1:
            if merge is None:
                raise AccountConflict(owner_ids)
            await merge(owner_ids)
            merged = True
            continue
        missing = [k for k in keys if k not in found]
        try:
            if not owner_ids:
                account_id = await _create(session, keys, app_key)
                return Resolution(account_id, True, tuple(keys))
            (owner,) = owner_ids
            if missing:
                await _attach(session, owner, missing, app_key)
            return Resolution(owner, False, tuple(missing), merged)
        except IntegrityError:
            continue  # a concurrent request won the race: read again what it wrote
    raise RuntimeError("identity race did not settle")


async def link(
    session: AsyncSession, account_id: uuid.UUID, keys: list[IdentityKey], app_key: str | None
) -> tuple[IdentityKey, ...]:
    """Attach ``keys`` to ``account_id``; a key owned by another account is a conflict."""
    await serialise(session, keys)
    for _ in range(_ATTEMPTS):
        found = await _owners_by_key(session, keys)
        others = set(found.values()) - {account_id}
        if others:
            raise AccountConflict(others | {account_id})
        missing = [k for k in keys if k not in found]
        try:
            if missing:
                await _attach(session, account_id, missing, app_key)
            return tuple(missing)
        except IntegrityError:
            continue
    raise RuntimeError("identity race did not settle")


async def serialise(session: AsyncSession, keys: list[IdentityKey]) -> None:
    """PostgreSQL: one transaction at a time per identifier, as SQLite's write lock already
    gives. Without it, two merges racing over overlapping accounts can each lock rows the other
    needs. Transaction-scoped advisory locks, taken in a fixed order, cannot deadlock."""
    bind = session.bind
    if bind is None or bind.dialect.name != "postgresql":
        return
    lock_ids = sorted({k.lock_id() for k in keys})
    params = {f"lock{i}": lock_id for i, lock_id in enumerate(lock_ids)}
    await execute_core(session, _locks(len(lock_ids)), params)


@functools.cache
def _locks(count: int) -> Any:
    """All of a request's locks in one round trip: PostgreSQL evaluates a select list left to
    right, so they are still taken in order."""
    return text("SELECT " + ", ".join(f"pg_advisory_xact_lock(:lock{i})" for i in range(count)))


INSERT_ACCOUNT = insert(Account.__table__)  # type: ignore[attr-defined]
INSERT_IDENTITY = insert(Identity.__table__)  # type: ignore[attr-defined]


async def _create(session: AsyncSession, keys: list[IdentityKey], app_key: str | None) -> uuid.UUID:
    """A new account with ``keys``, in a savepoint: a concurrent writer of one of the keys makes
    it an IntegrityError that rolls back to here, and the caller reads what that writer wrote."""
    account_id, now = uuid.uuid4(), utcnow()
    rows = identity_rows(account_id, keys, app_key, now)
    async with session.begin_nested():
        row = {"id": account_id, "status": AccountStatus.ACTIVE.value, "created_at": now}
        await execute_core(session, INSERT_ACCOUNT, row)
        await execute_core(session, INSERT_IDENTITY, rows)
        await announce.created(session, account_id, rows)
    return account_id


async def _attach(
    session: AsyncSession, account_id: uuid.UUID, keys: list[IdentityKey], app_key: str | None
) -> None:
    """Core rows, one statement for all keys (no ORM unit of work), announced."""
    rows = identity_rows(account_id, keys, app_key)
    async with session.begin_nested():
        await execute_core(session, INSERT_IDENTITY, rows)
        await announce.linked(session, account_id, rows)


def identity_rows(
    account_id: uuid.UUID,
    keys: list[IdentityKey],
    app_key: str | None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    now = now or utcnow()
    return [
        {
            "id": uuid.uuid4(),
            "account_id": account_id,
            "kind": key.kind.value,
            "scope": key.scope,
            "subject": key.subject,
            "app_key": app_key,
            "created_at": now,
        }
        for key in keys
    ]
