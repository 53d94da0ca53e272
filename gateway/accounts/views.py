"""Read models of the account graph, batched for DataLoaders (answers in key order)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from gateway.accounts.graph import IdentityKey, find
from gateway.store.db import Database
from gateway.store.models import Account, Identity, IdentityKind


@dataclass(frozen=True)
class AccountView:
    id: uuid.UUID
    status: str
    created_at: datetime
    merged_into_id: uuid.UUID | None
    nickname: str | None
    avatar_url: str | None


@dataclass(frozen=True)
class IdentityView:
    id: uuid.UUID
    account_id: uuid.UUID
    kind: IdentityKind
    scope: str
    subject: str
    app_key: str | None
    created_at: datetime


async def accounts_by_id(db: Database, ids: Sequence[uuid.UUID]) -> list[AccountView | None]:
    async with db.reader() as s:
        rows = (await s.execute(select(Account).where(col(Account.id).in_(ids)))).scalars().all()
    found = {
        r.id: AccountView(r.id, r.status, r.created_at, r.merged_into_id, r.nickname, r.avatar_url)
        for r in rows
    }
    return [found.get(i) for i in ids]


async def identities_by_account(db: Database, ids: Sequence[uuid.UUID]) -> list[list[IdentityView]]:
    async with db.reader() as s:
        query = (
            select(Identity)
            .where(col(Identity.account_id).in_(ids))
            .order_by(col(Identity.created_at))
        )
        rows = (await s.execute(query)).scalars().all()
    grouped: dict[uuid.UUID, list[IdentityView]] = defaultdict(list)
    for r in rows:
        grouped[r.account_id].append(_view(r))
    return [grouped.get(i, []) for i in ids]


async def identities_by_key(db: Database, keys: Sequence[IdentityKey]) -> list[IdentityView | None]:
    """Batch lookup of identities by (kind, scope, subject), answering in key order."""
    async with db.reader() as s:
        found = await find(s, list(keys))
    return [_view(found[k]) if k in found else None for k in keys]


def _view(r: Identity) -> IdentityView:
    return IdentityView(
        r.id, r.account_id, IdentityKind(r.kind), r.scope, r.subject, r.app_key, r.created_at
    )
