"""The account graph's read interface, and following a merged account to its survivor.

Readers above ``accounts`` (the partner use case, the API) depend on ``GraphReads`` only; the
API's per-request DataLoaders implement it, so reads batch without the use case knowing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from gateway.accounts.model import AccountStatus, AccountView, IdentityKey, IdentityView

MAX_MERGE_HOPS = 16
"""Merges re-point earlier merges at the survivor, so chains stay short; this only bounds a
corrupt cycle."""


class GraphReads(Protocol):
    async def account(self, account_id: uuid.UUID) -> AccountView | None: ...

    async def identities(self, account_id: uuid.UUID) -> list[IdentityView]: ...

    async def identities_by_key(self, keys: Sequence[IdentityKey]) -> list[IdentityView | None]: ...


async def follow_to_survivor(
    load: Callable[[uuid.UUID], Awaitable[AccountView | None]], account_id: uuid.UUID
) -> tuple[AccountView | None, bool]:
    """The live account ``account_id`` became, and whether a merge pointer was followed.
    A deleted account (or one merged into it) is no account at all: None."""
    merged = False
    view = await load(account_id)
    for _ in range(MAX_MERGE_HOPS):
        if view is None or view.merged_into_id is None:
            break
        merged = True
        view = await load(view.merged_into_id)
    if view is not None and view.status == AccountStatus.DELETED:
        return None, False
    return view, merged
