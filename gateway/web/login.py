"""The hosted login page (``/login``) and logout (``/logout``).

A password login is always offered (amr ``pwd``); a phone number and an SMS code when the
gateway sends SMS (``web.sms``: amr ``sms``); WeChat's doors as the configured apps allow
(``web.wechat``, ``web.scan``). ``?method=sms`` opens the page on the phone tab: the tabs are
links, so the page works without its script. A login leaves a browser session
(``web.browser``) and a 303 to ``next``, which must be a path on this gateway (an open
redirect is impossible: anything else lands on the plain "logged in" page). Every POST is
CSRF-checked (``web.pages``) before anything else.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.accounts.model import AccountGone
from gateway.config import AppKind
from gateway.credentials import devices
from gateway.errors import (
    AccountDisabled,
    GatewayError,
    InvalidCredentials,
    InvalidInput,
    Throttled,
)
from gateway.sessions.browser import BROWSER_APP
from gateway.web.browser import browser_client
from gateway.web.context import WebServices, web_services
from gateway.web.documents import PAGE_DOCUMENTS

DONE = "/login/done"
TABS = ("password", "sms")  # ``?method=``: the tab the page opens on (scan needs a script)
MAX_NEXT = 2048
EXPIRED = "This page has expired. Reload it and try again."
_FAILURES: dict[type[GatewayError], tuple[int, str]] = {
    InvalidInput: (400, "Enter your username and password."),
    InvalidCredentials: (401, "Wrong username or password."),
    Throttled: (429, "Too many attempts. Try again in a moment."),
    AccountDisabled: (403, "This account is disabled."),
}
_UNAVAILABLE = (503, "Log-in is temporarily unavailable. Try again in a moment.")


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a path on this gateway (``/...``, not ``//`` nor ``/\\``, no
    scheme, host, backslash or control character), else None."""
    if not value or len(value) > MAX_NEXT or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        return None
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def sms_offered(web: WebServices) -> bool:
    """The phone tab (``web.sms``) exists when the gateway sends SMS (sandbox mode: the
    sandbox provider)."""
    return web.config.sms_provider is not None and web.sms is not None


def in_wechat(request: Request) -> bool:
    """WeChat's own browser (its official account's OAuth logs in without a click)."""
    return "MicroMessenger" in request.headers.get("user-agent", "")


async def login_page(request: Request) -> Response:
    """``GET /login?next=<path>[&prompt=login]``."""
    web = web_services(request)
    target = safe_next(request.query_params.get("next"))
    if request.query_params.get("prompt") != "login":
        if await web.browser.current(request) is not None:
            return RedirectResponse(target or DONE, status_code=303)
        official = _apps(web, AppKind.OFFICIAL_ACCOUNT)
        if in_wechat(request) and official and request.query_params.get("auto") != "0":
            query = urlencode({"app": official[0][0], **({"next": target} if target else {})})
            return RedirectResponse(f"/login/wechat?{query}", status_code=303)
    tab = request.query_params.get("method", "password")
    return login_form(request, web, target, tab=tab if tab in TABS else "password")


def login_form(
    request: Request,
    web: WebServices,
    target: str | None,
    *,
    tab: str = "password",
    error: str | None = None,
    username: str = "",
    status: int = 200,
    **sms_state: object,
) -> Response:
    """The page on ``tab`` (password or sms); ``sms_state``: the phone tab's (``phone``,
    ``sent``, ``notice``, ``sms_error``: see ``web.sms``)."""
    wechat_next = {"next": target} if target else {}
    websites = [
        (name, f"/login/wechat?{urlencode({'app': key, **wechat_next})}")
        for key, name in _apps(web, AppKind.WEBSITE)
    ]
    context = {
        "next": target or "",
        "error": error,
        "username": username,
        "websites": websites,
        "scan_apps": [key for key, _ in _apps(web, AppKind.MINIPROGRAM)],
        "scan_documents": PAGE_DOCUMENTS,
        "sms": sms_offered(web),
        "tab": tab if tab == "password" or sms_offered(web) else "password",
        "tab_urls": {t: f"/login?{urlencode({**wechat_next, 'method': t})}" for t in TABS},
        "phone": "",
        "sent": False,
        "notice": None,
        "sms_error": None,
        **sms_state,
    }
    origins = web.redirect_origins(target) if target else ()
    return web.pages.render(request, "login.html", context, status=status, form_origins=origins)


def _apps(web: WebServices, kind: AppKind) -> list[tuple[str, str]]:
    return [(a.key, a.name) for a in web.config.apps if a.kind == kind]


async def login_submit(request: Request) -> Response:
    """``POST /login``: CSRF, then the password use case (its throttling and device cookie),
    then the browser session and a 303 to ``next``."""
    web = web_services(request)
    form = await request.form()
    target = safe_next(_text(form.get("next")))
    if not web.pages.check_csrf(request, form):
        return web.pages.error(request, "Something went wrong", EXPIRED, status=403)
    username, password = _text(form.get("username")), _text(form.get("password"))
    client = browser_client(request)
    response = RedirectResponse(target or DONE, status_code=303)
    try:
        if not username or not password:
            raise InvalidInput("username", "username and password are required")
        device = request.cookies.get(devices.COOKIE)
        account_id = await web.passwords.check(BROWSER_APP, username, password, client, device)
        await web.browser.start(
            response, account_id, ["pwd"], client, request=request, door="password"
        )
    except AccountGone:  # erased since the password was read: the name is gone
        status, message = _FAILURES[InvalidCredentials]
        return login_form(request, web, target, error=message, username=username, status=status)
    except GatewayError as exc:
        status, message = _FAILURES.get(type(exc), _UNAVAILABLE)
        return login_form(request, web, target, error=message, username=username, status=status)
    _remember_device(web, response, username)
    return response


def _remember_device(web: WebServices, response: Response, username: str) -> None:
    """The device cookie of a password login (``credentials.devices``), for this page."""
    response.set_cookie(
        devices.COOKIE,
        web.passwords.device_cookie(username),
        max_age=devices.MAX_AGE,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=web.pages.secure_cookies,
    )


def _text(value: object) -> str:
    return value[:4096] if isinstance(value, str) else ""


async def done_page(request: Request) -> Response:
    """``GET /login/done``: where a login without a ``next`` lands."""
    web = web_services(request)
    if await web.browser.current(request) is None:
        return RedirectResponse("/login", status_code=303)
    return web.pages.render(request, "done.html")


async def logout_page(request: Request) -> Response:
    """``GET /logout``: a confirmation (a GET never logs anyone out)."""
    return web_services(request).pages.render(request, "logout.html")


async def logout_submit(request: Request) -> Response:
    """``POST /logout``: CSRF, then the browser session ends."""
    web = web_services(request)
    form = await request.form()
    if not web.pages.check_csrf(request, form):
        return web.pages.error(request, "Something went wrong", EXPIRED, status=403)
    response = web.pages.render(request, "logged_out.html")
    await web.browser.end(request, response)
    return response
