"""The partner lookup use case: admit (scope, rate), find, filter by entitlement, audit.

Every partner query runs through :meth:`PartnerLookups.lookup`, so the order (validate the
keys, admit, read, hide what the partner is not entitled to, audit the read or the refusal)
is written once. Reads go through ``GraphReads``, which the API's per-request DataLoaders
implement, so a page of lookups costs a few batched queries whatever its shape.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.accounts.model import AccountView, IdentityKey
from gateway.accounts.reads import GraphReads, follow_to_survivor
from gateway.errors import InvalidInput, NotEntitled, RateLimited, declares
from gateway.partners import scopes
from gateway.partners.registry import PartnerView
from gateway.partners.service import MAX_BATCH, PartnerAccess, VisibleIdentity

KeyMaker = Callable[[PartnerAccess], Sequence[tuple[str, IdentityKey]]]


@dataclass(frozen=True)
class Lookup:
    """One key's answer: the live account it leads to (if the partner may see it)."""

    key: str
    account: AccountView | None
    merged: bool


@dataclass(frozen=True)
class LookupRequest:
    partner: PartnerView
    query: str  # the GraphQL field, for the audit
    scope: str
    ip: str | None

    @property
    def require_entitled(self) -> bool:
        """Lookups by a WeChat identifier or id answer only accounts in the partner's apps;
        the username and phone scopes are granted for all accounts."""
        return self.scope == scopes.LOOKUP


class PartnerLookups:
    def __init__(self, access: PartnerAccess) -> None:
        self._access = access

    @declares(NotEntitled, RateLimited, InvalidInput, PartnerAccess.openid_key)
    async def lookup(
        self, reads: GraphReads, request: LookupRequest, make_keys: KeyMaker
    ) -> list[Lookup]:
        """Keys from ``make_keys`` (which validates them), answered in order."""
        access = self._access
        try:
            pairs = make_keys(access)
            if len(pairs) > MAX_BATCH:
                raise InvalidInput("keys", f"at most {MAX_BATCH} keys per request")
            await access.admit(request.partner, request.scope, len(pairs))
        except (NotEntitled, RateLimited) as exc:
            await access.audit_refusal(request.partner, request.query, exc.code, request.ip)
            raise
        found = await reads.identities_by_key([k for _, k in pairs])
        # concurrently, so that each DataLoader sees every key of the batch at once
        items = await asyncio.gather(
            *(
                self._one(reads, request, label, f.account_id if f else None)
                for (label, _), f in zip(pairs, found, strict=True)
            )
        )
        returned = sum(i.account is not None for i in items)
        await access.audit(request.partner, request.query, len(pairs), returned, request.ip)
        return list(items)

    @declares(lookup)
    async def by_account_id(
        self, reads: GraphReads, request: LookupRequest, key: str, account_id: uuid.UUID
    ) -> Lookup:
        """An account by its own id: no identity key to validate, the same admission."""
        access = self._access
        try:
            await access.admit(request.partner, request.scope, 1)
        except (NotEntitled, RateLimited) as exc:
            await access.audit_refusal(request.partner, request.query, exc.code, request.ip)
            raise
        found = await self._one(reads, request, key, account_id)
        returned = int(found.account is not None)
        await access.audit(request.partner, request.query, 1, returned, request.ip)
        return found

    async def _one(
        self, reads: GraphReads, request: LookupRequest, key: str, account_id: uuid.UUID | None
    ) -> Lookup:
        if account_id is None:
            return Lookup(key, None, False)
        view, merged = await follow_to_survivor(reads.account, account_id)
        if view is not None and request.require_entitled:
            identities = await reads.identities(view.id)
            if not self._access.entitled_to_any(request.partner, identities):
                view = None  # an account outside this partner's apps does not exist for it
        return Lookup(key, view, merged and view is not None)

    async def identities(
        self, reads: GraphReads, partner: PartnerView, account_id: uuid.UUID
    ) -> list[VisibleIdentity]:
        """An account's identities as this partner may see them."""
        return self._access.visible(partner, await reads.identities(account_id))
