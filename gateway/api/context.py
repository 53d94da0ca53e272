"""Per-request context: services, DataLoaders (never shared across requests), the viewer."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from gateway.accounts import views
from gateway.accounts.graph import IdentityKey
from gateway.audit import ClientInfo
from gateway.partners.registry import PartnerView
from gateway.sessions.service import Viewer

if TYPE_CHECKING:
    from gateway.bootstrap import Services


@dataclass
class Loaders:
    accounts: DataLoader[uuid.UUID, views.AccountView | None]
    identities: DataLoader[uuid.UUID, list[views.IdentityView]]
    identity_by_key: DataLoader[IdentityKey, views.IdentityView | None]


def make_loaders(services: Services) -> Loaders:
    return Loaders(
        accounts=DataLoader(partial(views.accounts_by_id, services.db)),
        identities=DataLoader(partial(views.identities_by_account, services.db)),
        identity_by_key=DataLoader(partial(views.identities_by_key, services.db)),
    )


@dataclass
class Context:
    request: Request
    services: Services
    loaders: Loaders
    # one task each, shared by every resolver of the request: fields resolve concurrently
    _viewer: asyncio.Task[Viewer | None] | None = field(default=None, init=False)
    _partner: asyncio.Task[PartnerView | None] | None = field(default=None, init=False)

    async def viewer(self) -> Viewer | None:
        """The logged-in caller (frontend token), authenticated once per request."""
        if self._viewer is None:
            self._viewer = asyncio.ensure_future(self._authenticate())
        return await asyncio.shield(self._viewer)

    async def partner(self) -> PartnerView | None:
        """The partner behind a partner token (never a frontend token), if still enabled."""
        if self._partner is None:
            self._partner = asyncio.ensure_future(self._authenticate_partner())
        return await asyncio.shield(self._partner)

    async def _authenticate(self) -> Viewer | None:
        token = _bearer(self.request)
        viewer = await self.services.sessions.authenticate(token) if token else None
        if viewer is not None and viewer.account is not None:
            self.loaders.accounts.prime(viewer.account_id, viewer.account)  # read already
        return viewer

    async def _authenticate_partner(self) -> PartnerView | None:
        token = _bearer(self.request)
        claims = self.services.partner_tokens.verify(token) if token else None
        if claims is None:
            return None
        partner = await self.services.partners.get(claims.client_id)
        if partner is None or partner.disabled:
            return None
        # the token's scopes, never more than the partner still has
        return replace(partner, scopes=partner.scopes & claims.scopes)

    def client(self, platform: str, channel: str | None, device_param: str | None) -> ClientInfo:
        return ClientInfo(
            platform=platform,
            channel=channel,
            device_param=device_param,
            ip=self.request.client.host if self.request.client else None,
            user_agent=(self.request.headers.get("user-agent") or "")[:512] or None,
        )


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
