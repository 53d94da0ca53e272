"""The partner surface: `partner { ... }` with a partner token. Identities arrive here already
filtered by ``PartnerAccess.visible``; these types only render them."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry import relay

from gateway.accounts.graph import IdentityKey
from gateway.accounts.views import AccountView
from gateway.api.errors import (
    ErrorCode,
    InvalidInputError,
    NotAuthenticatedError,
    NotEntitledError,
    RateLimitedError,
    to_error,
)
from gateway.api.types import App, IdentityKind, Info
from gateway.errors import GatewayError, invalid_input
from gateway.partners import scopes
from gateway.partners.registry import PartnerView
from gateway.partners.service import MAX_BATCH, PartnerAccess


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
        rows = await info.context.loaders.identities.load(self.account_id)
        shown = info.context.services.partner_access.visible(self.partner, rows)
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


AccountLookupResult = Annotated[
    AccountLookup | NotEntitledError | RateLimitedError | InvalidInputError,
    strawberry.union("AccountLookupResult"),
]
BatchLookupResult = Annotated[
    BatchLookup | NotEntitledError | RateLimitedError | InvalidInputError,
    strawberry.union("BatchLookupResult"),
]


async def _survivor(info: Info, account_id: uuid.UUID) -> tuple[AccountView | None, bool]:
    merged = False
    view = await info.context.loaders.accounts.load(account_id)
    for _ in range(8):
        if view is None or view.merged_into_id is None:
            break
        merged = True
        view = await info.context.loaders.accounts.load(view.merged_into_id)
    return view, merged


async def _lookup(
    info: Info, partner: PartnerView, key: str, account_id: uuid.UUID | None, require_entitled: bool
) -> AccountLookup:
    view, merged = await _survivor(info, account_id) if account_id else (None, False)
    if view is not None and require_entitled:
        identities = await info.context.loaders.identities.load(view.id)
        if not info.context.services.partner_access.entitled_to_any(partner, identities):
            view = None  # an account outside this partner's apps does not exist for it
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
        key=key, found=account is not None, merged=merged and bool(account), account=account
    )


async def _by_keys(
    info: Info,
    partner: PartnerView,
    query: str,
    scope: str,
    make_keys: Callable[[PartnerAccess], Sequence[tuple[str, IdentityKey]]],
    require_entitled: bool = True,
) -> list[AccountLookup]:
    access = info.context.services.partner_access
    try:
        pairs = make_keys(access)
        if len(pairs) > MAX_BATCH:
            raise invalid_input("keys", f"at most {MAX_BATCH} keys per request")
        await access.admit(partner, scope, len(pairs))
    except GatewayError as exc:
        if exc.code in ("NOT_ENTITLED", "RATE_LIMITED"):
            await access.audit_refusal(partner, query, exc.code, _ip(info))
        raise
    found = await info.context.loaders.identity_by_key.load_many([k for _, k in pairs])
    # concurrently, so that each DataLoader sees every key of the batch at once
    items = await asyncio.gather(
        *(
            _lookup(info, partner, label, f.account_id if f else None, require_entitled)
            for (label, _), f in zip(pairs, found, strict=True)
        )
    )
    await access.audit(partner, query, len(pairs), sum(i.found for i in items), _ip(info))
    return list(items)


def _ip(info: Info) -> str | None:
    client = info.context.request.client
    return client.host if client else None


async def _one(run: Callable[[], Awaitable[list[AccountLookup]]]) -> AccountLookupResult:
    try:
        return (await run())[0]
    except GatewayError as exc:
        return to_error(exc)  # type: ignore[return-value]


@strawberry.type(
    description="Lookups for partner services (Authorization: Bearer <partner token "
    "from POST /oauth/token>)."
)
class PartnerQuery:
    client_id: str
    scopes: list[str]
    me: strawberry.Private[PartnerView]

    @strawberry.field(description="An account by its id (scope accounts:lookup).")
    async def account(self, info: Info, id: strawberry.ID) -> AccountLookupResult:
        try:
            gid = relay.GlobalID.from_id(id)
            if gid.type_name != "Account":
                raise ValueError(id)
            account_id = uuid.UUID(gid.node_id)
        except Exception:
            return InvalidInputError(
                code=ErrorCode.INVALID_INPUT, message="Not an Account id.", field="id"
            )
        access = info.context.services.partner_access
        try:
            try:
                await access.admit(self.me, scopes.LOOKUP, 1)
            except GatewayError as exc:
                await access.audit_refusal(self.me, "account", exc.code, _ip(info))
                raise
            found = await _lookup(info, self.me, str(id), account_id, True)
            await access.audit(self.me, "account", 1, int(found.found), _ip(info))
        except GatewayError as exc:
            return to_error(exc)  # type: ignore[return-value]
        return found

    @strawberry.field(description="An account by its openid in one of your apps.")
    async def account_by_openid(self, info: Info, app: str, openid: str) -> AccountLookupResult:
        return await _one(
            lambda: _by_keys(
                info,
                self.me,
                "accountByOpenid",
                scopes.LOOKUP,
                lambda a: [(openid, a.openid_key(self.me, app, openid))],
            )
        )

    @strawberry.field(description="An account by its unionid on one of your platforms.")
    async def account_by_unionid(
        self, info: Info, platform: str, unionid: str
    ) -> AccountLookupResult:
        return await _one(
            lambda: _by_keys(
                info,
                self.me,
                "accountByUnionid",
                scopes.LOOKUP,
                lambda a: [(unionid, a.unionid_key(self.me, platform, unionid))],
            )
        )

    @strawberry.field(description="An account by username (scope accounts:lookup-username).")
    async def account_by_username(self, info: Info, username: str) -> AccountLookupResult:
        return await _one(
            lambda: _by_keys(
                info,
                self.me,
                "accountByUsername",
                scopes.LOOKUP_USERNAME,
                lambda a: [(username, a.username_key(username))],
                require_entitled=False,
            )
        )

    @strawberry.field(description="An account by E.164 phone (scope accounts:lookup-phone).")
    async def account_by_phone(self, info: Info, phone: str) -> AccountLookupResult:
        return await _one(
            lambda: _by_keys(
                info,
                self.me,
                "accountByPhone",
                scopes.LOOKUP_PHONE,
                lambda a: [(phone, a.phone_key(phone))],
                require_entitled=False,
            )
        )

    @strawberry.field(
        description=f"Up to {MAX_BATCH} openids of one of your apps at once, answered in order."
    )
    async def accounts_by_openids(
        self, info: Info, app: str, openids: list[str]
    ) -> BatchLookupResult:
        try:
            if len(openids) > MAX_BATCH:
                raise invalid_input("openids", f"at most {MAX_BATCH} openids per request")
            items = await _by_keys(
                info,
                self.me,
                "accountsByOpenids",
                scopes.LOOKUP,
                lambda a: [(o, a.openid_key(self.me, app, o)) for o in openids],
            )
        except GatewayError as exc:
            return to_error(exc)  # type: ignore[return-value]
        return BatchLookup(items=items)


PartnerAccessResult = Annotated[
    PartnerQuery | NotAuthenticatedError, strawberry.union("PartnerAccessResult")
]


async def partner_root(info: Info) -> PartnerAccessResult:
    partner = await info.context.partner()
    if partner is None:
        return NotAuthenticatedError(
            code=ErrorCode.NOT_LOGGED_IN,
            message="Partner lookups need a partner token: POST /oauth/token with your client "
            "credentials, then Authorization: Bearer <access_token>.",
        )
    return PartnerQuery(client_id=partner.client_id, scopes=sorted(partner.scopes), me=partner)
