"""GraphQL object types: built from domain read models, never from ORM rows.

No type here carries a raw openid or unionid: frontends see opaque ids and app names only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from gateway.accounts.model import AccountView, IdentityView
from gateway.accounts.model import IdentityKind as DomainKind
from gateway.api import results
from gateway.api.context import Context
from gateway.api.sites import AuthorizedSite, authorized_sites
from gateway.config import AppConfig
from gateway.errors import TooExpensive
from gateway.rights.service import Rights

Info = strawberry.Info[Context, None]


@strawberry.enum
class AppKind(Enum):
    MINIPROGRAM = "miniprogram"
    OFFICIAL_ACCOUNT = "official_account"
    WEBSITE = "website"
    MOBILE_APP = "mobile_app"


@strawberry.enum
class IdentityKind(Enum):
    WECHAT_OPENID = "wechat_openid"
    WECHAT_UNIONID = "wechat_unionid"
    USERNAME = "username"
    PHONE = "phone"


@strawberry.type(description="A WeChat application served by this gateway.")
class App:
    key: str = strawberry.field(description="The name clients send as `app`.")
    kind: AppKind
    name: str

    @classmethod
    def from_config(cls, app: AppConfig) -> App:
        return cls(key=app.key, kind=AppKind(app.kind.value), name=app.name)


@strawberry.type(description="One way to reach an account; its raw identifier is never shown.")
class Identity(relay.Node):
    id: relay.NodeID[str]
    kind: IdentityKind
    linked_at: datetime
    app_key: strawberry.Private[str | None]
    label_source: strawberry.Private[str]

    @strawberry.field(description="The app this identity was linked through, when there is one.")
    def app(self, info: Info) -> App | None:
        config = info.context.services.config.app(self.app_key) if self.app_key else None
        return App.from_config(config) if config else None

    @strawberry.field(description="Something a person recognises: a username or a masked phone.")
    def label(self) -> str | None:
        return self.label_source or None

    @classmethod
    def from_view(cls, view: IdentityView) -> Identity:
        return cls(
            id=str(view.id),
            kind=IdentityKind(view.kind.value),
            linked_at=view.created_at,
            app_key=view.app_key,
            label_source=_label(view),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Identity | None]:
        viewer = await info.context.viewer()
        if viewer is None:
            return [None for _ in node_ids]
        mine = await info.context.loaders.identities.load(viewer.account_id)
        by_id = {str(i.id): cls.from_view(i) for i in mine}
        return [by_id.get(n) for n in node_ids]


def _label(view: IdentityView) -> str:
    if view.kind == DomainKind.USERNAME:
        return view.subject
    if view.kind == DomainKind.PHONE and len(view.subject) >= 7:
        return f"{view.subject[:3]}****{view.subject[-4:]}"
    return ""


@strawberry.type(description="A login session of your account (see revokeSession).")
class LoginSessionInfo(relay.Node):
    id: relay.NodeID[str]
    app: App | None
    platform: str
    channel: str | None
    device_param: str | None
    ip: str | None
    user_agent: str | None
    created_at: datetime
    last_used_at: datetime = strawberry.field(description="Login or last token refresh.")
    expires_at: datetime
    current: bool = strawberry.field(description="True for the session making this request.")

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[LoginSessionInfo | None]:
        return [None for _ in node_ids]  # listed through viewer.sessions only


@strawberry.type(description="Your data export (PIPL art. 45): one JSON document.")
class PersonalData:
    document: JSON = strawberry.field(
        description="generatedAt, account, identities, sessions (newest 200), auditEvents "
        "(newest 500), truncated: {sessions, auditEvents} (true when older ones were left out)."
    )


@strawberry.type(description="A person: every identity linked to it resolves here.")
class Account(relay.Node):
    id: relay.NodeID[str]
    status: str
    created_at: datetime
    nickname: str | None  # from WeChat, when the user shared a real one
    avatar_url: str | None

    @strawberry.field
    async def identities(self, info: Info) -> list[Identity]:
        views = await info.context.loaders.identities.load(uuid.UUID(self.id))
        return [Identity.from_view(v) for v in views]

    @strawberry.field(description="Websites you allowed to log you in (your own account only).")
    async def authorized_sites(self, info: Info) -> list[AuthorizedSite]:
        return await authorized_sites(info, self.id)

    @strawberry.field(description="Your live login sessions (only on your own account).")
    async def sessions(self, info: Info) -> list[LoginSessionInfo]:
        viewer = await info.context.viewer()
        if viewer is None or str(viewer.account_id) != self.id:
            return []
        config = info.context.services.config
        rows = await info.context.services.sessions.active(viewer.account_id)
        return [
            LoginSessionInfo(
                id=str(r.id),
                app=App.from_config(app) if (app := config.app(r.app_key)) else None,
                platform=r.platform,
                channel=r.channel,
                device_param=r.device_param,
                ip=r.ip,
                user_agent=r.user_agent,
                created_at=r.created_at,
                last_used_at=r.last_used_at,
                expires_at=r.expires_at,
                current=r.id == viewer.session_id,
            )
            for r in rows
        ]

    @results.field(
        "PersonalDataResult",
        PersonalData,
        TooExpensive,
        Rights.own_personal_data,
        optional=True,
        description="Everything the gateway holds about you (profile, identities, the newest "
        "sessions and audit events), as one JSON document; only on your own account, null "
        "otherwise. Expensive: once per request (`TooExpensiveError` for another) and once "
        "per account per minute (`RateLimitedError`).",
    )
    async def personal_data(self, info: Info) -> PersonalData | None:
        viewer = await info.context.viewer()
        if viewer is None or str(viewer.account_id) != self.id:
            return None
        info.context.spend_expensive()
        document = await info.context.services.rights.own_personal_data(viewer.account_id)
        return PersonalData(document=cast(JSON, document))

    @classmethod
    def from_view(cls, view: AccountView) -> Account:
        return cls(
            id=str(view.id),
            status=view.status,
            created_at=view.created_at,
            nickname=view.nickname,
            avatar_url=view.avatar_url,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Account | None]:
        """Frontends may only fetch their own account by id."""
        viewer = await info.context.viewer()
        own = str(viewer.account_id) if viewer else None
        result: list[Account | None] = []
        for node_id in node_ids:
            view = (
                await info.context.loaders.account(viewer.account_id)
                if (viewer and node_id == own)
                else None
            )
            result.append(cls.from_view(view) if view else None)
        return result


async def load_account(info: Info, account_id: uuid.UUID) -> Account:
    view = await info.context.loaders.account(account_id)
    if view is None:
        raise LookupError("account vanished")
    return Account.from_view(view)


async def changed_account(info: Info, account_id: uuid.UUID) -> Account:
    """After a mutation: what this request loaded before the write is stale."""
    for loader in (info.context.loaders.accounts, info.context.loaders.identities):
        if loader.cache_map.get(account_id) is not None:  # strawberry's clear() raises if absent
            loader.clear(account_id)
    view = await info.context.loaders.accounts.load(account_id)
    if view is None:
        raise LookupError("account vanished")
    return Account.from_view(view)
