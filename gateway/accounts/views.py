"""Read models of the account graph, batched for DataLoaders (answers in key order).

Reads go through Core columns on a bare connection: the hot read paths skip the ORM.
"""

from __future__ import annotations

import dataclasses
import operator
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import col

from gateway.accounts.graph import find
from gateway.accounts.model import (
    AccountStatus,
    AccountView,
    IdentityKey,
    IdentityKind,
    IdentityView,
)
from gateway.accounts.tables import Account, Identity
from gateway.store.db import Database

# Core columns, in the order of the views' fields
ACCOUNT_COLUMNS = (
    col(Account.id),
    col(Account.status),
    col(Account.created_at),
    col(Account.merged_into_id),
    col(Account.nickname),
    col(Account.avatar_url),
    col(Account.disabled_reason),
    col(Account.deletion_requested_at),
    col(Account.deletion_due_at),
    col(Account.deleted_at),
)
IDENTITY_COLUMNS = (
    col(Identity.id),
    col(Identity.account_id),
    col(Identity.kind),
    col(Identity.scope),
    col(Identity.subject),
    col(Identity.app_key),
    col(Identity.created_at),
)


def account_view(r: Sequence[Any]) -> AccountView:
    """From a row of ACCOUNT_COLUMNS."""
    return AccountView(*r[: len(ACCOUNT_COLUMNS)])


def to_account_view(a: Account) -> AccountView:
    return AccountView(
        a.id,
        a.status,
        a.created_at,
        a.merged_into_id,
        a.nickname,
        a.avatar_url,
        a.disabled_reason,
        a.deletion_requested_at,
        a.deletion_due_at,
        a.deleted_at,
    )


def identity_view(r: Sequence[Any]) -> IdentityView:
    """From a row of IDENTITY_COLUMNS."""
    return IdentityView(r[0], r[1], IdentityKind(r[2]), r[3], r[4], r[5], r[6])


# The account as a part of a statement another owner composes (sessions' token check and
# refresh, a one-statement login): its columns labelled ``account_<field>``, read back by
# those names (``read_account``), so the other owner never knows their number or order.
_PREFIX = "account_"
FIELDS = tuple(f.name for f in dataclasses.fields(AccountView))
"""The account's columns by name, as the view's fields are."""
_TABLE: Any = Account.__table__  # type: ignore[attr-defined]
LABELLED: tuple[Any, ...] = tuple(_TABLE.c[name].label(_PREFIX + name) for name in FIELDS)
_PICK = operator.itemgetter(*(_PREFIX + name for name in FIELDS))


def labelled(name: str) -> str:
    """The label of the account's column ``name`` in another owner's statement."""
    return _PREFIX + name


def read_account(row: Mapping[str, Any]) -> AccountView:
    """The account of a row selected with :data:`LABELLED` columns, by their labels."""
    return AccountView(*_PICK(row))


def with_account(columns: Sequence[Any], account_id: Any) -> Select[Any]:
    """``SELECT columns..., <the account's labelled columns>`` joined on ``account_id``: a
    caller that holds an account id in its own table reads the account in the same round
    trip, and hands the row to :func:`read_account`."""
    return select(*columns, *LABELLED).join(Account, col(Account.id) == account_id)


def account_id_in(part: Any) -> Any:
    """The account's id among the columns of ``part`` (a CTE or subquery of a statement
    made with :func:`with_account`)."""
    return part.c[labelled("id")]


def merged_in(part: Any) -> Any:
    """SQL: the account among the columns of ``part`` was merged into another."""
    return part.c[labelled("status")] == AccountStatus.MERGED


async def accounts_by_id(db: Database, ids: Sequence[uuid.UUID]) -> list[AccountView | None]:
    rows = await db.read(select(*ACCOUNT_COLUMNS).where(col(Account.id).in_(ids)))
    found = {r[0]: account_view(r) for r in rows}
    return [found.get(i) for i in ids]


async def identities_by_account(db: Database, ids: Sequence[uuid.UUID]) -> list[list[IdentityView]]:
    query = (
        select(*IDENTITY_COLUMNS)
        .where(col(Identity.account_id).in_(ids))
        .order_by(col(Identity.created_at))
    )
    grouped: dict[uuid.UUID, list[IdentityView]] = defaultdict(list)
    for r in await db.read(query):
        grouped[r[1]].append(identity_view(r))
    return [grouped.get(i, []) for i in ids]


async def identities_by_key(db: Database, keys: Sequence[IdentityKey]) -> list[IdentityView | None]:
    """Batch lookup of identities by (kind, scope, subject), answering in key order."""
    async with db.reader() as s:
        found = await find(s, list(keys))
    return [to_view(found[k]) if k in found else None for k in keys]


def to_view(r: Identity) -> IdentityView:
    return IdentityView(
        r.id, r.account_id, IdentityKind(r.kind), r.scope, r.subject, r.app_key, r.created_at
    )


async def merged_into(db: Database, account_id: uuid.UUID) -> list[AccountView]:
    query = (
        select(*ACCOUNT_COLUMNS)
        .where(col(Account.merged_into_id) == account_id)
        .order_by(col(Account.created_at))
    )
    return [account_view(r) for r in await db.read(query)]


async def by_nickname_prefix(db: Database, prefix: str, limit: int) -> list[AccountView]:
    """Live accounts whose nickname starts with ``prefix`` (the console's search), oldest
    first; ``%`` and ``_`` in the prefix match themselves."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(*ACCOUNT_COLUMNS)
        .where(
            col(Account.nickname).like(f"{escaped}%", escape="\\"),
            col(Account.status).in_((AccountStatus.ACTIVE, AccountStatus.DISABLED)),
        )
        .order_by(col(Account.created_at))
        .limit(limit)
    )
    return [account_view(r) for r in await db.read(query)]
