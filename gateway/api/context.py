"""Per-request context: the use cases the API calls, DataLoaders (never shared across requests),
the viewer. ``ApiServices`` is this layer's port: the composition root fills it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from gateway.accounts.model import AccountView, IdentityKey, IdentityView
from gateway.accounts.service import AccountGraph
from gateway.addresses import client_address
from gateway.audit import ClientInfo, storable
from gateway.config import GatewayConfig
from gateway.credentials import devices
from gateway.credentials.service import Passwords
from gateway.errors import NotLoggedIn
from gateway.miniprogram.service import MiniProgramSessions
from gateway.partners.auth import PartnerAuth
from gateway.partners.lookups import PartnerLookups
from gateway.partners.registry import PartnerView
from gateway.sessions.service import Sessions, Viewer
from gateway.wechat.oauth import OAuthStates
from gateway.wechat_login.service import WechatLogin


@dataclass(frozen=True)
class ApiServices:
    """What the GraphQL layer needs, and nothing more."""

    config: GatewayConfig
    accounts: AccountGraph
    sessions: Sessions
    wechat_login: WechatLogin
    oauth_states: OAuthStates
    miniprogram: MiniProgramSessions
    passwords: Passwords
    partner_auth: PartnerAuth
    partner_lookups: PartnerLookups


@dataclass
class Loaders:
    accounts: DataLoader[uuid.UUID, AccountView | None]
    identities: DataLoader[uuid.UUID, list[IdentityView]]
    identity_by_key: DataLoader[IdentityKey, IdentityView | None]


def make_loaders(accounts: AccountGraph) -> Loaders:
    return Loaders(
        accounts=DataLoader(accounts.accounts),
        identities=DataLoader(accounts.identities),
        identity_by_key=DataLoader(accounts.identities_by_key),
    )


class LoaderReads:
    """The account graph's read interface over this request's DataLoaders (batched, cached)."""

    def __init__(self, loaders: Loaders) -> None:
        self._loaders = loaders

    async def account(self, account_id: uuid.UUID) -> AccountView | None:
        return await self._loaders.accounts.load(account_id)

    async def identities(self, account_id: uuid.UUID) -> list[IdentityView]:
        return await self._loaders.identities.load(account_id)

    async def identities_by_key(self, keys: Sequence[IdentityKey]) -> list[IdentityView | None]:
        return await self._loaders.identity_by_key.load_many(keys)


@dataclass
class Context:
    request: Request
    services: ApiServices
    loaders: Loaders
    # one task each, shared by every resolver of the request: fields resolve concurrently
    reads: LoaderReads = field(init=False)
    _viewer: asyncio.Task[Viewer | None] | None = field(default=None, init=False)
    _partner: asyncio.Task[PartnerView | None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.reads = LoaderReads(self.loaders)

    async def viewer(self) -> Viewer | None:
        """The logged-in caller (frontend token), authenticated once per request."""
        if self._viewer is None:
            self._viewer = asyncio.ensure_future(self._authenticate())
        return await asyncio.shield(self._viewer)

    async def require_viewer(self) -> Viewer:
        """The logged-in caller; ``NotLoggedIn`` (a typed result) without a valid token."""
        viewer = await self.viewer()
        if viewer is None:
            raise NotLoggedIn()
        return viewer

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
        return await self.services.partner_auth.authenticate(token) if token else None

    def device_cookie(self) -> str | None:
        """The signed device cookie of an earlier password login (``credentials.devices``)."""
        return self.request.cookies.get(devices.COOKIE)

    def remember_device(self, token: str) -> None:
        sub: Response = self.request.state.sub_response
        sub.set_cookie(
            devices.COOKIE,
            token,
            max_age=devices.MAX_AGE,
            path="/graphql",
            httponly=True,
            samesite="strict",
            secure=self.request.url.scheme == "https",
        )

    def client(self, platform: str, channel: str | None, device_param: str | None) -> ClientInfo:
        return ClientInfo(
            platform=platform,
            channel=channel,
            device_param=device_param,
            ip=client_address(self.request.scope),
            user_agent=storable((self.request.headers.get("user-agent") or "")[:512]) or None,
        )


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
