"""Per-request context: the use cases the API calls, DataLoaders (never shared across requests),
the viewer. ``ApiServices`` is this layer's port: the composition root fills it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from gateway.accounts.model import AccountView, IdentityKey, IdentityView
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo
from gateway.config import GatewayConfig
from gateway.credentials.service import Passwords
from gateway.errors import NotLoggedIn
from gateway.miniprogram.service import MiniProgramSessions
from gateway.partners.auth import PartnerAuth
from gateway.partners.lookups import PartnerLookups
from gateway.partners.registry import PartnerView
from gateway.rights.service import Rights
from gateway.sessions.service import Sessions, Viewer
from gateway.sessions.tokens import TokenRejected
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
    rights: Rights


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
    reads: LoaderReads = field(init=False)
    _viewer: Viewer | None = field(default=None, init=False)
    _partner: PartnerView | None = field(default=None, init=False)
    _failed: Exception | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.reads = LoaderReads(self.loaders)

    async def authenticate(self) -> None:
        """Once, before the operation runs: a request without a bearer token is anonymous; one
        with a token that is not live (expired, revoked, forged) is refused as a whole
        (``TokenRejected``: 401 with RFC 6750's ``invalid_token``), never taken as anonymous."""
        token = _bearer(self.request)
        if token is None:
            return
        try:
            await self._authenticate(token)
        except TokenRejected:
            raise
        except Exception as exc:  # e.g. the database is down: each field that needs the
            self._failed = exc  # caller fails (masked, with its path); the rest still answer

    async def _authenticate(self, token: str) -> None:
        try:
            self._viewer = await self.services.sessions.authenticate(token)
        except TokenRejected as rejected:
            if rejected.ours:
                raise
            # not a frontend token: a partner token, or nothing of ours
            self._partner = await self.services.partner_auth.authenticate(token)
            return
        if self._viewer.account is not None:
            self.loaders.accounts.prime(self._viewer.account_id, self._viewer.account)

    async def viewer(self) -> Viewer | None:
        """The logged-in caller (frontend token)."""
        if self._failed is not None:
            raise self._failed
        return self._viewer

    async def require_viewer(self) -> Viewer:
        """The logged-in caller; ``NotLoggedIn`` (a typed result) without a valid token."""
        viewer = await self.viewer()
        if viewer is None:
            raise NotLoggedIn()
        return viewer

    async def partner(self) -> PartnerView | None:
        """The partner behind a partner token (never a frontend token)."""
        if self._failed is not None:
            raise self._failed
        return self._partner

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
