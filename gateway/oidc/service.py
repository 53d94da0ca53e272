"""What the provider's endpoints share: built once by the composition root, reached by
``oidc(request)`` (``app.state.oidc``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from gateway.accounts.service import AccountGraph
from gateway.addresses import client_address
from gateway.audit import ClientInfo
from gateway.clients.grants import Codes, Consents
from gateway.clients.registry import Clients
from gateway.config import GatewayConfig
from gateway.oidc.ports import BrowserSessions, Pages
from gateway.oidc.server import Prefetched, Provider
from gateway.oidc.subjects import Subjects
from gateway.partners.oauth import basic_credentials
from gateway.sessions.keys import SigningKeys
from gateway.sessions.service import Sessions
from gateway.throttle import Throttle

Issuer = Callable[[Request], str]


@dataclass
class OidcServices:
    config: GatewayConfig
    clients: Clients
    codes: Codes
    consents: Consents
    sessions: Sessions
    accounts: AccountGraph
    subjects: Subjects
    keys: SigningKeys
    provider: Provider
    throttle: Throttle
    issuer: Issuer
    pages: Pages
    browser: BrowserSessions

    def prefetched(self, request: Request) -> Prefetched:
        return Prefetched(issuer=self.issuer(request))


def oidc(request: Request) -> OidcServices:
    services: OidcServices = request.app.state.oidc
    return services


def web_client(request: Request) -> ClientInfo:
    """The browser or relying party behind a request, as the audit records it."""
    return ClientInfo(
        "web", ip=client_address(request.scope), user_agent=request.headers.get("user-agent")
    )


def client_credentials(request: Request, fields: dict[str, str]) -> tuple[str, str]:
    """The client id and secret the request presents (a Basic header, else the form), for
    the prefetch and the throttle; authlib authenticates."""
    basic = basic_credentials(request.headers.get("authorization", ""))
    if basic is not None:
        return basic
    return fields.get("client_id", ""), fields.get("client_secret", "")
