"""What the web routes need, filled by the composition root (``gateway.bootstrap``): the
routes never import it. ``web_services(request)`` is how a route reaches them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from starlette.requests import Request

from gateway.config import GatewayConfig
from gateway.credentials.service import Passwords
from gateway.rights.sms_login import SmsLogin
from gateway.sms.service import SmsCodes
from gateway.web.browser import BrowserSessions
from gateway.web.pages import Pages
from gateway.weblogin.service import WebLogins
from gateway.wechat.oauth import OAuthStates
from gateway.wechat_login.service import WechatLogin


@dataclass
class WebServices:
    config: GatewayConfig
    pages: Pages
    browser: BrowserSessions
    passwords: Passwords
    wechat_login: WechatLogin
    oauth_states: OAuthStates
    scan: WebLogins  # scan to log in with the mini-program (``gateway.weblogin``)
    # the phone tab (``gateway.web.sms``): shown when ``config.sms_provider`` is set
    sms: SmsCodes | None = None
    sms_login: SmsLogin | None = None
    # the origins a login page's ``next`` may redirect on to (its CSP's form-action: Chromium
    # applies it to every redirect after a form POST); OIDC's authorize fills it in
    redirect_origins: Callable[[str], Iterable[str]] = field(default=lambda _next: ())


def web_services(request: Request) -> WebServices:
    """The app's ``WebServices`` (``app.state.web``, set when the server starts)."""
    services: WebServices = request.app.state.web
    return services
