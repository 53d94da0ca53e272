"""Per-request context: the use cases the API calls, DataLoaders (never shared across requests),
the viewer. ``ApiServices`` is this layer's port: the composition root fills it."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from gateway import i18n
from gateway.accounts.model import AccountView, IdentityKey, IdentityView
from gateway.accounts.service import AccountGraph
from gateway.addresses import client_address
from gateway.audit import ClientInfo, storable
from gateway.clients.grants import Consents
from gateway.config import GatewayConfig
from gateway.credentials import devices
from gateway.credentials.service import Passwords
from gateway.errors import NotLoggedIn, TooExpensive
from gateway.events.feed import EventFeed
from gateway.miniprogram.service import MiniProgramSessions
from gateway.partners.auth import PartnerAuth
from gateway.partners.lookups import PartnerLookups
from gateway.partners.registry import PartnerView
from gateway.profiles.service import Profiles
from gateway.rights.factors import Factors
from gateway.rights.phone_login import PhoneLogin
from gateway.rights.service import Rights
from gateway.rights.sms_login import SmsLogin
from gateway.sessions.model import Viewer
from gateway.sessions.service import Sessions
from gateway.sessions.tokens import TokenRejected
from gateway.sms.service import SmsCodes
from gateway.weblogin.service import BINDING_COOKIE, WebLogins
from gateway.wechat.oauth import OAuthStates
from gateway.wechat_login.service import WechatLogin

GRAPHQL_RESPONSE = "application/graphql-response+json"


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
    partner_events: EventFeed
    rights: Rights
    factors: Factors
    phone_login: PhoneLogin
    profiles: Profiles
    sms: SmsCodes
    sms_login: SmsLogin
    consents: Consents  # websites' OpenID Connect consents (gateway.clients)
    web_logins: WebLogins


class Loaders:
    """This request's DataLoaders, each made when a resolver first asks for it: most requests
    (logins, refreshes, the viewer's id) need one or none of them.

    The caller's account, known from the token check, is primed into the accounts loader; an
    account asked for (``account``) before that loader exists is the primed one, answered
    without making the loader, a future and a cache, as the loader would answer it: nothing
    can have loaded or cleared an account of a loader that does not exist yet."""

    def __init__(self, accounts: AccountGraph) -> None:
        self._graph = accounts
        self._primed: dict[uuid.UUID, AccountView] = {}

    def prime_account(self, account_id: uuid.UUID, account: AccountView) -> None:
        """``DataLoader.prime``: kept here until the accounts loader is made."""
        if "accounts" in self.__dict__:
            self.accounts.prime(account_id, account)
        else:
            self._primed.setdefault(account_id, account)

    async def account(self, account_id: uuid.UUID) -> AccountView | None:
        """``accounts.load(account_id)``, the primed account without the loader."""
        if "accounts" not in self.__dict__ and account_id in self._primed:
            return self._primed[account_id]
        return await self.accounts.load(account_id)

    @functools.cached_property
    def accounts(self) -> DataLoader[uuid.UUID, AccountView | None]:
        loader: DataLoader[uuid.UUID, AccountView | None] = DataLoader(self._graph.accounts)
        if self._primed:
            loader.prime_many(self._primed)
        return loader

    @functools.cached_property
    def identities(self) -> DataLoader[uuid.UUID, list[IdentityView]]:
        return DataLoader(self._graph.identities)

    @functools.cached_property
    def identity_by_key(self) -> DataLoader[IdentityKey, IdentityView | None]:
        return DataLoader(self._graph.identities_by_key)


class LoaderReads:
    """The account graph's read interface over this request's DataLoaders (batched, cached)."""

    def __init__(self, loaders: Loaders) -> None:
        self._loaders = loaders

    async def account(self, account_id: uuid.UUID) -> AccountView | None:
        return await self._loaders.account(account_id)

    async def identities(self, account_id: uuid.UUID) -> list[IdentityView]:
        return await self._loaders.identities.load(account_id)

    async def identities_by_key(self, keys: Sequence[IdentityKey]) -> list[IdentityView | None]:
        return await self._loaders.identity_by_key.load_many(keys)


def new_sub_response(request: Request) -> Response:
    """What resolvers set on the answer (cookies, headers, a status), as strawberry's view
    makes it (no status, no ``content-length``), answered in the media type asked for."""
    sub = Response()
    sub.status_code = None  # type: ignore[assignment]
    del sub.headers["content-length"]
    if GRAPHQL_RESPONSE in request.headers.get("accept", ""):
        sub.media_type = GRAPHQL_RESPONSE
    return sub


@dataclass
class Context:
    """``sub``: the sub-response strawberry's view made; on the lean path none is made until
    a resolver sets something on it (``sub_response``): most answers set nothing."""

    request: Request
    services: ApiServices
    loaders: Loaders
    sub: Response | None = None
    reads: LoaderReads = field(init=False)
    _viewer: Viewer | None = field(default=None, init=False)
    _partner: PartnerView | None = field(default=None, init=False)
    _failed: Exception | None = field(default=None, init=False)
    _rejected: TokenRejected | None = field(default=None, init=False)
    _rejection_used: bool = field(default=False, init=False)
    _expensive: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.reads = LoaderReads(self.loaders)

    @functools.cached_property
    def locale(self) -> str:
        """The language of this request's messages: its ``Accept-Language``, or ``[i18n]
        default_locale``. Negotiated on first use (an error answered), once per request: a
        request that succeeds never pays for it."""
        header = self.request.headers.get("accept-language")
        return i18n.negotiate(header, self.services.config.i18n.default_locale)

    async def authenticate(self) -> None:
        """Once, before the operation runs. No bearer token: anonymous. A token that is not
        live (expired, revoked, forged) is remembered, and a field that needs the caller then
        fails the whole request (``token_rejection``: a 401 with RFC 6750's
        ``invalid_token``), so it is never taken for anonymous; operations that need no login
        (loginByCode, refreshToken, apps) still work under a stale header."""
        token = _bearer(self.request)
        if token is None:
            return
        try:
            await self._authenticate(token)
        except TokenRejected as rejected:
            self._rejected = rejected
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
            self.loaders.prime_account(self._viewer.account_id, self._viewer.account)

    @property
    def is_partner(self) -> bool:
        """The caller authenticated with a partner token (not a frontend: trusted documents
        do not bind it)."""
        return self._partner is not None

    @property
    def token_rejection(self) -> TokenRejected | None:
        """The rejected token's reason, once a field has needed the caller."""
        return self._rejected if self._rejection_used else None

    def _identity_check(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._rejected is not None:
            self._rejection_used = True
            raise self._rejected

    async def viewer(self) -> Viewer | None:
        """The logged-in caller (frontend token)."""
        self._identity_check()
        return self._viewer

    async def require_viewer(self) -> Viewer:
        """The logged-in caller; ``NotLoggedIn`` (a typed result) without a token."""
        viewer = await self.viewer()
        if viewer is None:
            raise NotLoggedIn()
        return viewer

    async def partner(self) -> PartnerView | None:
        """The partner behind a partner token (never a frontend token)."""
        self._identity_check()
        return self._partner

    def spend_expensive(self) -> None:
        """Count one expensive field (``personalData``) of this request: past
        ``max_expensive_fields``, ``TooExpensive`` (typed), so aliases cannot multiply the
        work. Synchronous, so concurrently resolved aliases count one by one."""
        self._expensive += 1
        if self._expensive > self.services.config.settings.max_expensive_fields:
            raise TooExpensive()

    def device_cookie(self) -> str | None:
        """The signed device cookie of an earlier password login (``credentials.devices``)."""
        return self.request.cookies.get(devices.COOKIE)

    def sub_response(self) -> Response:
        """The answer's sub-response, made on first use."""
        if self.sub is None:
            self.sub = new_sub_response(self.request)
        return self.sub

    def remember_device(self, token: str) -> None:
        self.sub_response().set_cookie(
            devices.COOKIE,
            token,
            max_age=devices.MAX_AGE,
            path="/graphql",
            httponly=True,
            samesite="strict",
            secure=self.request.url.scheme == "https",
        )

    def scan_binding(self) -> str | None:
        """The browser's scan-to-log-in binding secret (``gateway.weblogin``), if it has one."""
        return self.request.cookies.get(BINDING_COOKIE)

    def bind_scan(self, secret: str, max_age: int) -> None:
        """Bind this browser to its scan tickets: only it collects their logins. Lax, so the
        site's own pages (same site) send it; Secure whenever the gateway is not a sandbox
        (browsers keep Secure cookies on http://localhost too)."""
        self.sub_response().set_cookie(
            BINDING_COOKIE,
            secret,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=not self.services.config.sandbox,
        )

    def origin(self) -> str | None:
        """The ``Origin`` a browser sent (which site asks), when it is a plain origin."""
        origin = self.request.headers.get("origin", "")
        return origin if _ORIGIN.fullmatch(origin) else None

    def client(self, platform: str, channel: str | None, device_param: str | None) -> ClientInfo:
        return ClientInfo(
            platform=platform,
            channel=channel,
            device_param=device_param,
            ip=client_address(self.request.scope),
            user_agent=storable((self.request.headers.get("user-agent") or "")[:512]) or None,
        )


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]{1,200}(:[0-9]{1,5})?")


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
