"""What the console's routes need, filled by the composition root (``gateway.bootstrap``)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.accounts.service import AccountGraph
from gateway.config import GatewayConfig
from gateway.console.service import Console
from gateway.partners.registry import Partners
from gateway.rights.service import Rights
from gateway.store.db import Database
from gateway.web.pages import Pages
from gateway.wechat.app_token import AppTokens


@dataclass
class AdminServices:
    config: GatewayConfig
    pages: Pages
    console: Console
    rights: Rights
    accounts: AccountGraph  # reads only: identities of search results, nickname prefixes
    db: Database  # the audit trail's counts and the events' queue (as the CLI reads them)
    partners: Partners
    app_tokens: AppTokens  # the apps page shows each token's health


def admin_services(request: Request) -> AdminServices:
    """The app's ``AdminServices`` (``app.state.admin``, set when the server starts)."""
    services: AdminServices = request.app.state.admin
    return services
