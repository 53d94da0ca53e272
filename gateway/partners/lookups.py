"""The partner lookup use case: admit (scope, rate), find, filter by entitlement, audit.
The rules themselves are ``Entitlements`` (pure); this module adds the I/O around them.

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
from typing import Any

from gateway.accounts.model import AccountView, GraphReads, IdentityKey, follow_to_survivor
from gateway.audit import ClientInfo, record
from gateway.errors import InvalidInput, NotEntitled, RateLimited, declares
from gateway.partners import scopes
from gateway.partners.entitlements import MAX_BATCH, Entitlements, VisibleIdentity
from gateway.partners.rate import PartnerRate
from gateway.partners.registry import PartnerView
from gateway.store.db import Database, UnitOfWork

KeyMaker = Callable[[Entitlements], Sequence[tuple[str, IdentityKey]]]


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
    def __init__(self, rules: Entitlements, rate: PartnerRate, db: Database) -> None:
        self._rules = rules
        self._rate = rate
        self._db = db

    @declares(NotEntitled, RateLimited, InvalidInput, Entitlements.openid_key)
    async def lookup(
        self, reads: GraphReads, request: LookupRequest, make_keys: KeyMaker
    ) -> list[Lookup]:
        """Keys from ``make_keys`` (which validates them), answered in order."""
        try:
            pairs = make_keys(self._rules)
            if len(pairs) > MAX_BATCH:
                raise InvalidInput("keys", "at most %(count)s keys per request", count=MAX_BATCH)
            await self._admit(request, len(pairs))
        except (NotEntitled, RateLimited) as exc:
            await self._audit_refusal(request, exc.code)
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
        await self._audit(request, len(pairs), returned)
        return list(items)

    @declares(lookup)
    async def by_account_id(
        self, reads: GraphReads, request: LookupRequest, key: str, account_id: uuid.UUID
    ) -> Lookup:
        """An account by its own id: no identity key to validate, the same admission."""
        try:
            await self._admit(request, 1)
        except (NotEntitled, RateLimited) as exc:
            await self._audit_refusal(request, exc.code)
            raise
        found = await self._one(reads, request, key, account_id)
        await self._audit(request, 1, int(found.account is not None))
        return found

    async def _one(
        self, reads: GraphReads, request: LookupRequest, key: str, account_id: uuid.UUID | None
    ) -> Lookup:
        if account_id is None:
            return Lookup(key, None, False)
        view, merged = await follow_to_survivor(reads.account, account_id)
        if view is not None and request.require_entitled:
            identities = await reads.identities(view.id)
            if not self._rules.entitled_to_any(request.partner, identities):
                view = None  # an account outside this partner's apps does not exist for it
        return Lookup(key, view, merged and view is not None)

    async def identities(
        self, reads: GraphReads, partner: PartnerView, account_id: uuid.UUID
    ) -> list[VisibleIdentity]:
        """An account's identities as this partner may see them."""
        return self._rules.visible(partner, await reads.identities(account_id))

    async def _admit(self, request: LookupRequest, cost: int) -> None:
        Entitlements.check_scope(request.partner, request.scope)
        partner = request.partner
        await self._rate.spend(partner.client_id, cost, partner.rate_limit_per_minute)

    async def _audit(self, request: LookupRequest, asked: int, returned: int) -> None:
        await self._record("partner_read", request, keys=asked, returned=returned)

    async def _audit_refusal(self, request: LookupRequest, reason: str) -> None:
        """A refused read is recorded too: a partner probing for apps it lacks shows up."""
        await self._record("partner_refused", request, reason=reason)

    async def _record(self, kind: str, request: LookupRequest, **detail: Any) -> None:
        client = ClientInfo("partner", ip=request.ip)

        async def work(s: UnitOfWork) -> None:
            record(
                s, kind, client, partner=request.partner.client_id, query=request.query, **detail
            )

        await self._db.run_in_transaction(work)
