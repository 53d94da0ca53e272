"""The partner surface: `partner { ... }` with a partner token. Identities arrive here already
filtered by the partner use case (``gateway.partners.lookups``); these types only render them."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry import relay

from gateway.addresses import client_address
from gateway.api import results
from gateway.api.partner_events import PartnerEventConnection, connection, feed_request
from gateway.api.types import App, IdentityKind, Info
from gateway.errors import InvalidInput, NotLoggedIn
from gateway.events.feed import MAX_PAGE, EventFeed
from gateway.partners import scopes
from gateway.partners.entitlements import MAX_BATCH
from gateway.partners.lookups import KeyMaker, Lookup, LookupRequest, PartnerLookups
from gateway.partners.registry import PartnerView


@strawberry.type(description="An identity as a partner sees it: identifiers only where entitled.")
class PartnerIdentity:
    id: strawberry.ID
    kind: IdentityKind
    app: App | None
    platform: str | None
    linked_at: datetime
    openid: str | None = strawberry.field(description="Only for the partner's own apps.")
    unionid: str | None = strawberry.field(description="Only for the partner's platforms.")


@strawberry.type
class PartnerIdentityPage:
    items: list[PartnerIdentity]
    next_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")


@strawberry.type(description="An account as a partner sees it.")
class PartnerAccount:
    id: strawberry.ID
    status: str
    created_at: datetime
    account_id: strawberry.Private[uuid.UUID]
    partner: strawberry.Private[PartnerView]

    @strawberry.field
    async def identities(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> PartnerIdentityPage:
        first = max(1, min(first, 100))
        lookups = info.context.services.partner_lookups
        shown = await lookups.identities(info.context.reads, self.partner, self.account_id)
        start = _offset(after)
        config = info.context.services.config
        page = [
            PartnerIdentity(
                id=strawberry.ID(str(relay.GlobalID("Identity", str(v.id)))),
                kind=IdentityKind(v.kind.value),
                platform=v.platform,
                linked_at=v.linked_at,
                app=App.from_config(app) if v.app_key and (app := config.app(v.app_key)) else None,
                openid=v.openid,
                unionid=v.unionid,
            )
            for v in shown[start : start + first]
        ]
        more = start + first < len(shown)
        return PartnerIdentityPage(items=page, next_cursor=_cursor(start + first) if more else None)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("o:")))
    except ValueError:
        # a field argument, not a mutation input: a GraphQL error, which is never masked
        raise GraphQLError(
            "`after` is not a cursor from nextCursor.",
            extensions={"code": "INVALID_INPUT", "field": "after"},
        ) from None


@strawberry.type(
    description="`merged`: the key led to an account that was merged; `account` is "
    "the survivor, so update your references to its id."
)
class AccountLookup:
    key: str
    found: bool
    merged: bool
    account: PartnerAccount | None


@strawberry.type
class BatchLookup:
    items: list[AccountLookup]


def _answer(lookup: Lookup, partner: PartnerView) -> AccountLookup:
    view = lookup.account
    account = (
        PartnerAccount(
            id=strawberry.ID(str(relay.GlobalID("Account", str(view.id)))),
            status=view.status,
            created_at=view.created_at,
            account_id=view.id,
            partner=partner,
        )
        if view
        else None
    )
    return AccountLookup(
        key=lookup.key, found=account is not None, merged=lookup.merged, account=account
    )


def _request(info: Info, partner: PartnerView, query: str, scope: str) -> LookupRequest:
    return LookupRequest(partner, query, scope, client_address(info.context.request.scope))


async def _one(
    info: Info, partner: PartnerView, query: str, scope: str, keys: KeyMaker
) -> AccountLookup:
    request = _request(info, partner, query, scope)
    (found,) = await info.context.services.partner_lookups.lookup(info.context.reads, request, keys)
    return _answer(found, partner)


def _account_id(id: strawberry.ID) -> uuid.UUID:
    try:
        gid = relay.GlobalID.from_id(id)
        if gid.type_name != "Account":
            raise ValueError(id)
        return uuid.UUID(gid.node_id)
    except Exception:
        raise InvalidInput("id", "Not an Account id.") from None


@strawberry.type(
    description="Lookups for partner services (Authorization: Bearer <partner token "
    "from POST /oauth/token>)."
)
class PartnerQuery:
    client_id: str
    scopes: list[str]
    me: strawberry.Private[PartnerView]

    @results.field(
        "AccountLookupResult",
        AccountLookup,
        PartnerLookups.lookup,
        description="An account by its id (scope accounts:lookup).",
    )
    async def account(self, info: Info, id: strawberry.ID) -> AccountLookup:
        request = _request(info, self.me, "account", scopes.LOOKUP)
        lookups = info.context.services.partner_lookups
        found = await lookups.by_account_id(info.context.reads, request, str(id), _account_id(id))
        return _answer(found, self.me)

    @results.field(
        "AccountLookupResult",
        AccountLookup,
        PartnerLookups.lookup,
        description="An account by its openid in one of your apps.",
    )
    async def account_by_openid(self, info: Info, app: str, openid: str) -> AccountLookup:
        return await _one(
            info,
            self.me,
            "accountByOpenid",
            scopes.LOOKUP,
            lambda a: [(openid, a.openid_key(self.me, app, openid))],
        )

    @results.field(
        "AccountLookupResult",
        AccountLookup,
        PartnerLookups.lookup,
        description="An account by its unionid on one of your platforms.",
    )
    async def account_by_unionid(self, info: Info, platform: str, unionid: str) -> AccountLookup:
        return await _one(
            info,
            self.me,
            "accountByUnionid",
            scopes.LOOKUP,
            lambda a: [(unionid, a.unionid_key(self.me, platform, unionid))],
        )

    @results.field(
        "AccountLookupResult",
        AccountLookup,
        PartnerLookups.lookup,
        description="An account by username (scope accounts:lookup-username).",
    )
    async def account_by_username(self, info: Info, username: str) -> AccountLookup:
        return await _one(
            info,
            self.me,
            "accountByUsername",
            scopes.LOOKUP_USERNAME,
            lambda a: [(username, a.username_key(username))],
        )

    @results.field(
        "AccountLookupResult",
        AccountLookup,
        PartnerLookups.lookup,
        description="An account by phone number (scope accounts:lookup-phone): E.164 or as typed "
        "(`+86 138 0013 8000`; a number without `+` is Chinese).",
    )
    async def account_by_phone(self, info: Info, phone: str) -> AccountLookup:
        return await _one(
            info,
            self.me,
            "accountByPhone",
            scopes.LOOKUP_PHONE,
            lambda a: [(phone, a.phone_key(phone))],
        )

    @results.field(
        "BatchLookupResult",
        BatchLookup,
        PartnerLookups.lookup,
        description=f"Up to {MAX_BATCH} openids of one of your apps at once, answered in order.",
    )
    async def accounts_by_openids(self, info: Info, app: str, openids: list[str]) -> BatchLookup:
        if len(openids) > MAX_BATCH:
            raise InvalidInput("openids", "at most %(count)s openids per request", count=MAX_BATCH)
        request = _request(info, self.me, "accountsByOpenids", scopes.LOOKUP)
        found = await info.context.services.partner_lookups.lookup(
            info.context.reads,
            request,
            lambda a: [(o, a.openid_key(self.me, app, o)) for o in openids],
        )
        return BatchLookup(items=[_answer(f, self.me) for f in found])

    @results.field(
        "PartnerEventsResult",
        PartnerEventConnection,
        EventFeed.page,
        description="Your account events, oldest first, from `after` (a cursor of this feed; "
        f"none: the oldest kept), at most `first` (1..{MAX_PAGE}): the events your webhook "
        "receives, for partners without one. Poll with `pageInfo.endCursor`.",
    )
    async def events(
        self, info: Info, after: str | None = None, first: int = MAX_PAGE
    ) -> PartnerEventConnection:
        request = feed_request(info, self.me, after, first)
        return connection(await info.context.services.partner_events.page(request))


async def partner_root(info: Info) -> PartnerQuery:
    partner = await info.context.partner()
    if partner is None:
        raise NotLoggedIn(
            "Partner lookups need a partner token: POST /oauth/token with your client "
            "credentials, then Authorization: Bearer <access_token>."
        )
    return PartnerQuery(client_id=partner.client_id, scopes=sorted(partner.scopes), me=partner)
