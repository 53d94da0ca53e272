"""The hosted page's scan tab: the page starts a scan login over GraphQL
(``startWebLogin``, which binds this browser by an HttpOnly cookie), shows the mini-program
code and follows ``webLoginStatus`` without its cookies (so following never collects); once
APPROVED it posts the ticket here, where the binding cookie collects it (``WebLogins.collect``:
single use, this browser only) into a browser session, amr ``wechat_miniprogram_scan``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.errors import (
    AccountDisabled,
    GatewayError,
    WebLoginDenied,
    WebLoginPending,
)
from gateway.web.browser import browser_client
from gateway.web.context import web_services
from gateway.web.login import DONE, EXPIRED, safe_next
from gateway.weblogin.service import AMR, BINDING_COOKIE

_FAILURES: dict[type[GatewayError], tuple[int, str]] = {
    WebLoginDenied: (403, "The login was declined."),
    WebLoginPending: (409, "Scanned. Confirm the login in WeChat."),
    AccountDisabled: (403, "This account is disabled."),
}
_EXPIRED = (410, "The code has expired.")


async def collect(request: Request) -> Response:
    """``POST /login/scan`` (``ticket``, ``next``, the CSRF field)."""
    web = web_services(request)
    form = await request.form()
    if not web.pages.check_csrf(request, form):
        return web.pages.error(request, "Something went wrong", EXPIRED, status=403)
    ticket, target = form.get("ticket"), form.get("next")
    target = safe_next(target if isinstance(target, str) else None)
    response = RedirectResponse(target or DONE, status_code=303)
    client = browser_client(request)
    try:
        binding = request.cookies.get(BINDING_COOKIE, "")
        found = await web.scan.collect(ticket if isinstance(ticket, str) else "", binding)
        await web.browser.start(
            response, found.account_id, [AMR], client, request=request, door=AMR, app=found.app_key
        )
    except GatewayError as exc:
        status, message = _FAILURES.get(type(exc), _EXPIRED)
        return web.pages.error(request, "Log in", message, status=status)
    return response
