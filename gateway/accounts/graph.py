"""Find-or-create over the identity index, safe under concurrency.

The unique index on ``(kind, scope, subject)`` decides races: every insert runs in a savepoint,
and the loser of a race rolls back to it and reads what the winner wrote (social-core's order:
find by identifiers, then sign in or create, then add newly seen identifiers).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.store.models import Account, Identity, IdentityKind

_ATTEMPTS = 4


@dataclass(frozen=True)
class IdentityKey:
    kind: IdentityKind
    scope: str
    subject: str


@dataclass(frozen=True)
class Resolution:
    account_id: uuid.UUID
    is_new: bool
    new_identities: tuple[IdentityKey, ...] = ()
    merged: bool = False


Merger = Callable[[set[uuid.UUID]], Awaitable[uuid.UUID]]


class AccountConflict(Exception):
    """The identifiers belong to different accounts; what to do is the caller's rule."""

    def __init__(self, account_ids: set[uuid.UUID]) -> None:
        super().__init__("identifiers belong to different accounts")
        self.account_ids = account_ids


async def find(session: AsyncSession, keys: list[IdentityKey]) -> dict[IdentityKey, Identity]:
    clauses = [
        and_(
            col(Identity.kind) == k.kind,
            col(Identity.scope) == k.scope,
            col(Identity.subject) == k.subject,
        )
        for k in keys
    ]
    # populate_existing: a retry after a race or a merge must see rows as they are now, not as
    # this session's identity map remembers them
    query = select(Identity).where(or_(*clauses)).execution_options(populate_existing=True)
    rows = (await session.execute(query)).scalars().all()
    return {IdentityKey(IdentityKind(r.kind), r.scope, r.subject): r for r in rows}


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
    found = await find(session, keys)
    owners = {identity.account_id for identity in found.values()}
    if len(owners) == 1 and len(found) == len(keys):
        # the common case, a returning user: nothing to write to the graph, no lock to take
        return Resolution(next(iter(owners)), False)
    await _serialise(session, keys)
    for _ in range(_ATTEMPTS):
        found = await find(session, keys)
        owners = {identity.account_id for identity in found.values()}
        if len(owners) > 1:
            if merge is None:
                raise AccountConflict(owners)
            await merge(owners)
            merged = True
            continue
        missing = [k for k in keys if k not in found]
        try:
            if not owners:
                account_id = await _create(session, keys, app_key)
                return Resolution(account_id, True, tuple(keys))
            (owner,) = owners
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
    await _serialise(session, keys)
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


async def _serialise(session: AsyncSession, keys: list[IdentityKey]) -> None:
    """PostgreSQL: one transaction at a time per identifier, as SQLite's write lock already
    gives. Without it, two merges racing over overlapping accounts can each lock rows the other
    needs. Transaction-scoped advisory locks, taken in a fixed order, cannot deadlock."""
    bind = session.bind
    if bind is None or bind.dialect.name != "postgresql":
        return
    for lock_id in sorted({_lock_id(k) for k in keys}):
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def _lock_id(key: IdentityKey) -> int:
    digest = hashlib.sha256(f"{key.kind}\0{key.scope}\0{key.subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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
