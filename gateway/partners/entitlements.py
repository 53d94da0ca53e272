"""What a partner may ask and see. Every rule about entitlement lives here, so that no query
shape (nesting, aliases, fragments) can route around it: the API layer only ever receives
identities already filtered by ``visible``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway import phones
from gateway.accounts.model import IdentityKey, IdentityKind, IdentityView, normalize_username
from gateway.config import AppConfig
from gateway.errors import N_, InvalidInput, NotEntitled, declares
from gateway.outbox import Audience
from gateway.partners import scopes
from gateway.partners.registry import PartnerView

MAX_BATCH = 100


@dataclass(frozen=True)
class VisibleIdentity:
    id: uuid.UUID
    kind: IdentityKind
    app_key: str | None
    platform: str | None
    linked_at: datetime
    openid: str | None
    unionid: str | None


def not_entitled(template: str, **params: object) -> NotEntitled:
    return NotEntitled(template, **params)


class Entitlements:
    """Pure rules over the configured apps: which keys a partner may ask for, and what of an
    account's identities it may see. No I/O, so every rule has a fast test."""

    def __init__(self, apps: Sequence[AppConfig]) -> None:
        self._by_key = {a.key: a for a in apps}
        self._by_appid = {a.appid: a for a in apps}

    @staticmethod
    @declares(NotEntitled)
    def check_scope(partner: PartnerView, scope: str) -> None:
        if scope not in partner.scopes:
            raise not_entitled(
                N_("This partner is not entitled to the %(scope)s scope."), scope=scope
            )

    @declares(NotEntitled, InvalidInput)
    def openid_key(self, partner: PartnerView, app_key: str, openid: str) -> IdentityKey:
        app = self._by_key.get(app_key)
        if app is None or app.key not in partner.apps:
            raise not_entitled(
                N_("This partner is not entitled to app %(app)s."), app=repr(app_key)
            )
        _check_subject(openid, "openid")
        return IdentityKey(IdentityKind.WECHAT_OPENID, app.appid, openid)

    @declares(NotEntitled, InvalidInput)
    def unionid_key(self, partner: PartnerView, platform: str, unionid: str) -> IdentityKey:
        if platform not in partner.platforms:
            raise not_entitled(
                N_("This partner is not entitled to platform %(platform)s."),
                platform=repr(platform),
            )
        _check_subject(unionid, "unionid")
        return IdentityKey(IdentityKind.WECHAT_UNIONID, platform, unionid)

    @staticmethod
    @declares(InvalidInput)
    def username_key(username: str) -> IdentityKey:
        return IdentityKey(IdentityKind.USERNAME, "", normalize_username(username))

    @staticmethod
    @declares(InvalidInput)
    def phone_key(phone: str) -> IdentityKey:
        """The number as the graph knows it, however the partner spelled it."""
        return IdentityKey.phone(phones.normalise(phone))

    def visible(
        self, partner: PartnerView, identities: Sequence[IdentityView]
    ) -> list[VisibleIdentity]:
        """Identities this partner may see, with identifiers only where it is entitled."""
        shown = []
        for i in identities:
            entitled, app_key, platform = self._entitlement(partner, i)
            if not entitled and scopes.ALL_APPS not in partner.scopes:
                continue
            reveal = entitled and scopes.IDENTIFIERS in partner.scopes
            shown.append(
                VisibleIdentity(
                    id=i.id,
                    kind=i.kind,
                    app_key=app_key,
                    platform=platform,
                    linked_at=i.created_at,
                    openid=i.subject if reveal and i.kind == IdentityKind.WECHAT_OPENID else None,
                    unionid=i.subject if reveal and i.kind == IdentityKind.WECHAT_UNIONID else None,
                )
            )
        return shown

    def entitled_to_any(self, partner: PartnerView, identities: Sequence[IdentityView]) -> bool:
        """May this partner know the account of ``identities`` exists (a lookup by id)?"""
        return self.sees(partner, audience_of(identities))

    def sees(self, partner: PartnerView, audience: Audience) -> bool:
        """May this partner know of an account reachable through ``audience``: one of its apps
        or platforms? The one rule behind lookups by id and account events alike."""
        apps = {self._by_appid[a].key for a in audience.appids if a in self._by_appid}
        return bool(apps & partner.apps or audience.platforms & partner.platforms)

    def _entitlement(
        self, partner: PartnerView, identity: IdentityView
    ) -> tuple[bool, str | None, str | None]:
        if identity.kind == IdentityKind.WECHAT_OPENID:
            app = self._by_appid.get(identity.scope)
            key = app.key if app else None
            return key in partner.apps, key, app.platform if app else None
        if identity.kind == IdentityKind.WECHAT_UNIONID:
            return identity.scope in partner.platforms, None, identity.scope
        return False, identity.app_key, None


def audience_of(identities: Sequence[IdentityView]) -> Audience:
    """The apps and platforms through which ``identities`` reach their account."""
    return Audience(
        frozenset(i.scope for i in identities if i.kind == IdentityKind.WECHAT_OPENID),
        frozenset(i.scope for i in identities if i.kind == IdentityKind.WECHAT_UNIONID),
    )


def _check_subject(value: str, name: str) -> None:
    if not value or len(value) > 128 or not value.isascii():
        raise InvalidInput(name, "%(name)s is empty, too long or not ASCII.", name=name)
