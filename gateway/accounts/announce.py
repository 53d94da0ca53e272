"""The account graph's changes, announced as account events (``gateway.outbox``) inside the
transaction that makes them. Every change of the graph goes through ``accounts``, so every
event is written here, next to its change, never by a caller who might forget.

An event carries its audience (the apps and platforms the account is reachable through, read
in the same transaction) so that who may see it is decided as it is written: after an erasure
the identities it depended on are gone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.model import IdentityKey, IdentityKind
from gateway.accounts.tables import Identity
from gateway.outbox import IDENTIFIER, Audience, EventType, append, append_rows, row
from gateway.store.db import execute_core

_DOORS = select(col(Identity.kind), col(Identity.scope)).where(
    col(Identity.account_id) == bindparam("account_id")
)


def audience_of_keys(keys: Iterable[IdentityKey]) -> Audience:
    keys = list(keys)
    return Audience(
        frozenset(k.scope for k in keys if k.kind == IdentityKind.WECHAT_OPENID),
        frozenset(k.scope for k in keys if k.kind == IdentityKind.WECHAT_UNIONID),
    )


async def audience(s: AsyncSession, account_id: uuid.UUID) -> Audience:
    """The account's doors as this transaction sees them."""
    rows = (await execute_core(s, _DOORS, {"account_id": account_id})).all()
    return audience_of_keys(IdentityKey(IdentityKind(kind), scope, "") for kind, scope in rows)


def identity(
    id: uuid.UUID, key: IdentityKey, app_key: str | None, linked_at: datetime
) -> dict[str, Any]:
    """An identity as an event stores it; the raw identifier under ``IDENTIFIER``, which the
    rendering shows only to entitled partners and an erasure removes."""
    return {
        "id": str(id),
        "kind": key.kind.value,
        "scope": key.scope,
        IDENTIFIER: key.subject,
        "app_key": app_key,
        "linked_at": linked_at.isoformat(),
    }


def created_data(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``account.created``'s data from the identity rows the account was created with."""
    return {"identities": [identity(r["id"], _key(r), r["app_key"], r["created_at"]) for r in rows]}


def _key(row: dict[str, Any]) -> IdentityKey:
    return IdentityKey(IdentityKind(row["kind"]), row["scope"], row["subject"])


async def created(s: AsyncSession, account_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
    """A new account, with the identity rows it was created with."""
    keys = [_key(r) for r in rows]
    await append(
        s, EventType.ACCOUNT_CREATED, account_id, audience_of_keys(keys), created_data(rows)
    )


async def linked(s: AsyncSession, account_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
    """Identities attached to an existing account (``graph.identity_rows``), in one statement."""
    doors = await audience(s, account_id)
    events = [
        row(
            _door_event(_key(r), EventType.PHONE_BOUND, EventType.IDENTITY_LINKED),
            account_id,
            doors,
            {"identity": identity(r["id"], _key(r), r["app_key"], r["created_at"])},
        )
        for r in rows
    ]
    await append_rows(s, events)


def _door_event(key: IdentityKey, phone: EventType, other: EventType) -> EventType:
    """A phone number's own event type (``phone.bound``/``phone.unbound``), else the other."""
    return phone if key.kind == IdentityKind.PHONE else other


async def unlinked(
    s: AsyncSession,
    account_id: uuid.UUID,
    id: uuid.UUID,
    key: IdentityKey,
    app_key: str | None,
    linked_at: datetime,
) -> None:
    """Before the identity goes: its partners are still in the audience."""
    doors = await audience(s, account_id)
    kind = _door_event(key, EventType.PHONE_UNBOUND, EventType.IDENTITY_UNLINKED)
    await append(s, kind, account_id, doors, {"identity": identity(id, key, app_key, linked_at)})


async def merged(
    s: AsyncSession, absorbed: Sequence[uuid.UUID], survivor: uuid.UUID, doors: Audience
) -> None:
    """One ``account.merged`` per merged-away account, about that account (a partner keyed by
    it learns where its data goes), all in one statement. ``doors`` are the survivor's once the
    identities moved (the union), as the merge's move of the identities returned them: a merge
    costs no query of its own for the audience."""
    events = [
        row(EventType.ACCOUNT_MERGED, merged_id, doors, _merge_data(survivor, merged_id))
        for merged_id in absorbed
    ]
    await append_rows(s, events)


def _merge_data(survivor: uuid.UUID, merged_id: uuid.UUID) -> dict[str, Any]:
    return {"survivor_id": str(survivor), "merged_id": str(merged_id)}


async def announce(
    s: AsyncSession, type: EventType, account_id: uuid.UUID, data: dict[str, Any] | None = None
) -> None:
    """A change of the account's state (disabled, enabled, deletion requested or cancelled)."""
    await append(s, type, account_id, await audience(s, account_id), data)


async def deleted(s: AsyncSession, account_ids: Sequence[uuid.UUID], doors: Audience) -> None:
    """Erased: nothing personal, only the (pseudonymous) ids, each its own event so that a
    partner keyed by a merged-away id erases too; one statement for them all."""
    await append_rows(s, [row(EventType.ACCOUNT_DELETED, i, doors, {}) for i in account_ids])
