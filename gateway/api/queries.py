"""Queries for frontends."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from gateway.api import results
from gateway.api.partner import PartnerQuery, partner_root
from gateway.api.types import Account, App, Identity, Info, load_account
from gateway.errors import NotLoggedIn
from gateway.wechat.oauth import authorization_url
from gateway.wechat_login.service import WechatLogin


@strawberry.type(description="Where to send the browser; WeChat returns `code` and `state`.")
class AuthorizationUrl:
    url: str
    state: str
    expires_at: datetime


@strawberry.type(
    description="Whether the login state (and, for mini-programs, the WeChat "
    "session_key) is still valid."
)
class SessionStatus:
    valid: bool
    expires_at: datetime | None
    app: App | None
    wechat_session_valid: bool | None = strawberry.field(
        description="Mini-program sessions: whether WeChat still holds the session_key valid "
        "(false: call wx.login again before wx.getUserInfo). Null when unknown or not applicable."
    )


@strawberry.type
class Query:
    @strawberry.field(description="Fetch your own account or identity by its opaque id.")
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        """Resolved here rather than with relay.node(), which binds to a single schema."""
        try:
            global_id = relay.GlobalID.from_id(id)
        except Exception:
            return None
        kinds: dict[str, type[Account] | type[Identity]] = {
            "Account": Account,
            "Identity": Identity,
        }
        kind = kinds.get(global_id.type_name)
        if kind is None:
            return None
        (found,) = await kind.resolve_nodes(info=info, node_ids=[global_id.node_id])
        return found

    @results.field(
        "PartnerAccessResult",
        PartnerQuery,
        NotLoggedIn,
        description="Partner-service lookups; needs a partner token.",
    )
    async def partner(self, info: Info) -> PartnerQuery:
        return await partner_root(info)

    @strawberry.field(description="The logged-in account, or null without a valid access token.")
    async def viewer(self, info: Info) -> Account | None:
        viewer = await info.context.viewer()
        return await load_account(info, viewer.account_id) if viewer else None

    @strawberry.field(description="The apps this gateway serves.")
    def apps(self, info: Info) -> list[App]:
        return [App.from_config(a) for a in info.context.services.config.apps]

    @strawberry.field(description="True when this gateway runs against its WeChat sandbox.")
    def sandbox(self, info: Info) -> bool:
        return info.context.services.config.sandbox

    @results.field(
        "AuthorizationUrlResult",
        AuthorizationUrl,
        authorization_url,
        WechatLogin.app,
        description="The WeChat authorization URL for an official account "
        "(oauth2/authorize) or website (qrconnect), with a fresh signed state.",
    )
    def authorization_url(
        self, info: Info, app: str, redirect_uri: str, scope: str | None = None
    ) -> AuthorizationUrl:
        services = info.context.services
        config = services.wechat_login.app(app)
        state, expires_at = services.oauth_states.issue(config)
        url = authorization_url(
            services.config.settings.wechat_open_base, config, redirect_uri, scope, state
        )
        return AuthorizationUrl(url=url, state=state, expires_at=expires_at)

    @strawberry.field(
        description="Is my login still good? Without a token: `valid: false`. A token that is "
        "no longer live is refused as a whole request (HTTP 401, code TOKEN_EXPIRED or "
        "INVALID_TOKEN): refresh or log in again."
    )
    async def check_session(self, info: Info) -> SessionStatus:
        viewer = await info.context.viewer()
        if viewer is None:
            return SessionStatus(valid=False, expires_at=None, app=None, wechat_session_valid=None)
        services = info.context.services
        check = await services.miniprogram.check_session(viewer)
        app = services.config.app(viewer.app_key)
        return SessionStatus(
            valid=True,
            expires_at=viewer.expires_at,
            app=App.from_config(app) if app else None,
            wechat_session_valid=check.wechat_session_valid,
        )
