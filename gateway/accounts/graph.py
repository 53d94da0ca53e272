"""Find-or-create over the identity index, safe under concurrency.

The unique index on ``(kind, scope, subject)`` decides races: every insert runs in a savepoint,
and the loser of a race rolls back to it and reads what the winner wrote (social-core's order:
find by identifiers, then sign in or create, then add newly seen identifiers).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.model import AccountConflict, IdentityKey, IdentityKind, Resolution
from gateway.accounts.tables import Account, Identity
from gateway.store.db import execute_core

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
    return {identity.account_id for identity in (await find(session, keys)).values()}


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
        found = await find(session, keys)
        owner_ids = {identity.account_id for identity in found.values()}
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
        found = await find(session, keys)
        others = {i.account_id for i in found.values()} - {account_id}
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
    for lock_id in sorted({k.lock_id() for k in keys}):
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


async def _create(session: AsyncSession, keys: list[IdentityKey], app_key: str | None) -> uuid.UUID:
    async with session.begin_nested():
        account = Account()
        session.add(account)
        await session.flush()
        _add_identities(session, account.id, keys, app_key)
        await session.flush()
    return account.id


async def _attach(
    session: AsyncSession, account_id: uuid.UUID, keys: list[IdentityKey], app_key: str | None
) -> None:
    async with session.begin_nested():
        _add_identities(session, account_id, keys, app_key)
        await session.flush()


def _add_identities(
    session: AsyncSession, account_id: uuid.UUID, keys: list[IdentityKey], app_key: str | None
) -> None:
    for key in keys:
        session.add(
            Identity(
                account_id=account_id,
                kind=key.kind,
                scope=key.scope,
                subject=key.subject,
                app_key=app_key,
            )
        )
