"""Merging two accounts that a new link proved to be one person (DESIGN §2, invariant 3).

The oldest account survives. Every identity and login session of the others moves to it, the
others become ``merged`` with a pointer to it, and one audit event records it, all inside the
caller's transaction: a failure anywhere leaves every account as it was. Accounts are locked
in id order (``FOR UPDATE`` on PostgreSQL; SQLite's write lock already serialises writers), so
two concurrent merges of the same accounts queue instead of deadlocking, and the second finds
the work done.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.audit import ClientInfo, record
from gateway.metrics import MERGES
from gateway.store.models import Account, AccountStatus, Identity, LoginSession


async def merge_accounts(
    s: AsyncSession,
    account_ids: set[uuid.UUID],
    *,
    reason: str,
    client: ClientInfo | None,
    app_key: str | None,
) -> uuid.UUID:
    """Merge ``account_ids`` (already resolved to live accounts) and return the survivor."""
    query = (
        select(Account)
        .where(col(Account.id).in_(sorted(account_ids)))
        .order_by(col(Account.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    accounts = (await s.execute(query)).scalars().all()
    live = [a for a in accounts if a.status != AccountStatus.MERGED]
    if not live:  # another transaction merged them all meanwhile: the caller re-reads owners
        return accounts[0].merged_into_id or accounts[0].id
    survivor = min(live, key=lambda a: (a.created_at, str(a.id)))
    absorbed = [a.id for a in live if a.id != survivor.id]
    if not absorbed:
        return survivor.id
    # identities and sessions move; earlier merges into an absorbed account now point
    # straight at the survivor
    moves = (
        (Identity, "account_id"),
        (LoginSession, "account_id"),
        (Account, "merged_into_id"),
    )
    for model, column in moves:
        await s.execute(
            update(model).where(getattr(model, column).in_(absorbed)).values({column: survivor.id})
        )
    await s.execute(
        update(Account)
        .where(col(Account.id).in_(absorbed))
        .values(status=AccountStatus.MERGED, merged_into_id=survivor.id)
    )
    MERGES.inc(len(absorbed))
    record(
        s,
        "merge",
        client,
        account_id=survivor.id,
        app_key=app_key,
        reason=reason,
        merged=[str(a) for a in absorbed],
    )
    return survivor.id
