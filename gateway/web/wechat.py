"""WeChat's doors on the hosted login page: a website app's QR login (``snsapi_login``:
amr ``wechat_qr``) and, inside WeChat's own browser, an official account's OAuth
(``snsapi_userinfo``: amr ``wechat_oauth``).

``/login/wechat?app=KEY&next=...`` sends the browser to WeChat with a signed ``state``
(``wechat.oauth.OAuthStates``), which is also kept, with ``next``, in a short-lived cookie of
this browser: the callback takes a code only with the state this browser was given, so a
callback URL carrying someone else's code logs nobody in here (login CSRF). The code goes
through the WeChat login use case (its exchange, account resolution, merges and audit); the
API session it opens on the way is handed over to the browser's.

In sandbox mode WeChat's authorization pages are the emulator's (``/sandbox/wechat-open``).
"""

from __future__ import annotations

import hmac
from urllib.parse import quote, unquote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.accounts.model import AccountGone
from gateway.config import AppConfig, AppKind
from gateway.errors import AccountDisabled, GatewayError
from gateway.web.browser import browser_client
from gateway.web.context import WebServices, web_services
from gateway.web.login import DONE, safe_next
from gateway.wechat.oauth import STATE_SECONDS, authorization_url

COOKIE = "gw_wechat"
CALLBACK = "/login/wechat/callback"
SANDBOX_OPEN = "/sandbox/wechat-open"
_DOORS = {
    AppKind.WEBSITE: ("snsapi_login", "wechat_qr"),
    AppKind.OFFICIAL_ACCOUNT: ("snsapi_userinfo", "wechat_oauth"),
}
_FAILED = "WeChat login failed"


def _app(web: WebServices, request: Request) -> AppConfig | None:
    app = web.config.app(request.query_params.get("app", ""))
    return app if app is not None and app.kind in _DOORS else None


def _open_base(web: WebServices, request: Request) -> str:
    if web.config.sandbox:
        return web.pages.origin(request) + SANDBOX_OPEN
    return web.config.settings.wechat_open_base


async def start(request: Request) -> Response:
    """``GET /login/wechat?app=KEY&next=...``: off to WeChat's authorization page."""
    web = web_services(request)
    app = _app(web, request)
    if app is None:
        return web.pages.error(
            request, "Unknown app", "This way of logging in is not offered here."
        )
    target = safe_next(request.query_params.get("next")) or ""
    state, _ = web.oauth_states.issue(app)
    callback = f"{web.pages.origin(request)}{CALLBACK}?{urlencode({'app': app.key})}"
    scope = _DOORS[app.kind][0]
    url = authorization_url(_open_base(web, request), app, callback, scope, state)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        COOKIE,
        f"{state}~{quote(target, safe='')}",
        max_age=STATE_SECONDS,
        path=CALLBACK,
        httponly=True,
        samesite="lax",
        secure=web.pages.secure_cookies,
    )
    return response


def _remembered(request: Request) -> tuple[str, str | None] | None:
    """The state this browser was sent off with, if the callback carries it, and ``next``."""
    kept, _, target = request.cookies.get(COOKIE, "").partition("~")
    given = request.query_params.get("state", "")
    if not kept or not hmac.compare_digest(kept.encode(), given.encode()):
        return None
    return given, safe_next(unquote(target))


async def callback(request: Request) -> Response:
    """``GET /login/wechat/callback?app=KEY&code=...&state=...``: the browser's session."""
    web = web_services(request)
    app, remembered = _app(web, request), _remembered(request)
    code = request.query_params.get("code", "")
    if app is None or remembered is None or not code:
        return _failed(request, web)
    state, target = remembered
    client = browser_client(request)
    response = RedirectResponse(target or DONE, status_code=303)
    amr = _DOORS[app.kind][1]
    try:
        outcome = await web.wechat_login.login_by_code(app.key, code, client, state)
        tokens = outcome.tokens
        await web.browser.start(
            response,
            tokens.account_id,
            [amr],
            client,
            replacing=tokens.session_id,
            request=request,
            door=amr,
        )
    except AccountDisabled:
        return _failed(request, web, "This account is disabled.", status=403)
    except (GatewayError, AccountGone):
        return _failed(request, web)
    response.delete_cookie(COOKIE, path=CALLBACK)
    return response


def _failed(
    request: Request,
    web: WebServices,
    detail: str = "WeChat did not confirm the login. Try again.",
    status: int = 400,
) -> Response:
    response = web.pages.error(request, _FAILED, detail, status=status)
    response.delete_cookie(COOKIE, path=CALLBACK)
    return response
