"""Merging accounts that a new link proved to be one person (DESIGN §2, invariant 3).

The oldest account survives. Every identity of the others moves to it, the others become
``merged`` with a pointer to it, rows other owners keep per account follow (their ``MergeHook``,
e.g. login sessions), and one audit event records it, all inside the caller's transaction: a
failure anywhere leaves every account as it was. Accounts are locked in id order (``FOR UPDATE``
on PostgreSQL; SQLite's write lock already serialises writers), so two concurrent merges of the
same accounts queue instead of deadlocking, and the second finds the work done.

A disabled account is never merged (``MergeRefused``, raised before anything moves): its
identities would become the survivor's and usable again, undoing the operator's disable.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts import announce
from gateway.accounts.model import (
    AccountGone,
    AccountStatus,
    IdentityKey,
    IdentityKind,
    MergeRefused,
    survivor_order,
)
from gateway.accounts.tables import Account, Identity
from gateway.audit import ClientInfo, record
from gateway.metrics import MERGES
from gateway.outbox import Audience
from gateway.store.broadcast import account_key, changed

MergeHook = Callable[[AsyncSession, list[uuid.UUID], uuid.UUID], Awaitable[None]]
"""``(session, absorbed account ids, survivor id)``: move what you keep per account."""


async def merge_accounts(
    s: AsyncSession,
    account_ids: set[uuid.UUID],
    *,
    reason: str,
    client: ClientInfo | None,
    app_key: str | None,
    hooks: Sequence[MergeHook] = (),
) -> uuid.UUID:
    """Merge ``account_ids`` (already resolved to live accounts) and return the survivor."""
    accounts = await _locked(s, account_ids)
    live = [a for a in accounts if a.status != AccountStatus.MERGED]
    if not live:  # another transaction merged them all meanwhile: the caller re-reads owners
        return accounts[0].merged_into_id or accounts[0].id
    survivor = survivor_order([(a.created_at, a.id) for a in live])
    absorbed = [a.id for a in live if a.id != survivor]
    if not absorbed:
        return survivor
    _refuse_unmergeable(live)
    doors = await _move(s, absorbed, survivor)
    for hook in hooks:
        await hook(s, absorbed, survivor)
    await announce.merged(s, absorbed, survivor, doors)
    MERGES.inc(len(absorbed))
    record(
        s,
        "merge",
        client,
        account_id=survivor,
        app_key=app_key,
        reason=reason,
        merged=[str(a) for a in absorbed],
    )
    return survivor


async def _locked(s: AsyncSession, account_ids: set[uuid.UUID]) -> Sequence[Account]:
    """The accounts, locked in id order (concurrent merges queue instead of deadlocking) and
    read afresh after the lock."""
    query = (
        select(Account)
        .where(col(Account.id).in_(sorted(account_ids)))
        .order_by(col(Account.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await s.execute(query)).scalars().all()


def _refuse_unmergeable(live: Sequence[Account]) -> None:
    """An erased account still holding identities (``AccountGone``: the caller releases them
    and starts over) or a disabled one (``MergeRefused``) stops the merge before anything
    moves."""
    erased = [a.id for a in live if a.status == AccountStatus.DELETED]
    if erased:
        raise AccountGone(erased[0])
    disabled = {a.id for a in live if a.status != AccountStatus.ACTIVE}
    if disabled:
        raise MergeRefused({a.id for a in live}, disabled)


async def _move(s: AsyncSession, absorbed: list[uuid.UUID], survivor: uuid.UUID) -> Audience:
    """Identities move; earlier merges into an absorbed account now point at the survivor.

    The survivor's own identities are rewritten in place by the same statement, so that it
    returns every door the survivor has after the merge (read after the locks, as a query
    would): the merge event's audience, without a round trip of its own."""
    changed(s, map(account_key, [*absorbed, survivor]))
    doors = await s.execute(
        update(Identity)
        .where(col(Identity.account_id).in_([*absorbed, survivor]))
        .values(account_id=survivor)
        .returning(col(Identity.kind), col(Identity.scope))
    )
    keys = [IdentityKey(IdentityKind(kind), scope, "") for kind, scope in doors.all()]
    await s.execute(
        update(Account)
        .where(col(Account.merged_into_id).in_(absorbed))
        .values(merged_into_id=survivor)
    )
    await s.execute(
        update(Account)
        .where(col(Account.id).in_(absorbed))
        .values(status=AccountStatus.MERGED, merged_into_id=survivor)
    )
    return announce.audience_of_keys(keys)
