"""Who is asking: the operator of the console's session cookie, and what they may do.

The cookie (``gw_admin``) is HttpOnly, SameSite=Strict, path ``/admin``, Secure outside
sandbox mode. Nothing else opens the console: an end user's or partner's bearer token, or the
hosted login page's browser session, is not read here at all. Roles are checked on the
server for every request (a refusal is HTTP 403), and every POST is CSRF-checked
(``Pages.check_csrf``: a signed double-submit token, not ``Origin`` alone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin.context import AdminServices, admin_services
from gateway.audit import ClientInfo
from gateway.console.model import OperatorView, Role

COOKIE = "gw_admin"
PATH = "/admin"
LOGIN = "/admin/login"
PASSWORD = "/admin/password"
DOMAIN = "admin"
MAX_FORM_BYTES = 16_384

Page = Callable[[Request, AdminServices, OperatorView], Awaitable[Response]]
Action = Callable[[Request, AdminServices, OperatorView, FormData], Awaitable[Response]]


def client(request: Request) -> ClientInfo:
    """The operator's browser, for the audit trail."""
    ip = request.client.host if request.client else None
    return ClientInfo("console", ip=ip, user_agent=request.headers.get("user-agent", "")[:512])


def set_cookie(svc: AdminServices, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE, value, path=PATH, httponly=True, samesite="strict",
        secure=svc.pages.secure_cookies,
    )  # fmt: skip


def clear_cookie(svc: AdminServices, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, httponly=True, samesite="strict", secure=svc.pages.secure_cookies
    )


def refuse(request: Request, svc: AdminServices, status: int = 403) -> Response:
    titles = {403: "Not allowed", 404: "Page not found", 400: "Something went wrong"}
    details = {
        403: "Your role does not allow this.",
        404: "Nothing here.",
        400: "This page has expired. Reload it and try again.",
    }
    return svc.pages.error(request, titles[status], details[status], status, domain=DOMAIN)


def stale(request: Request, svc: AdminServices) -> Response:
    """A POST without this browser's CSRF token (a forgery, or a page kept too long): 403."""
    return svc.pages.error(
        request, "Something went wrong", "This page has expired. Reload it and try again.", 403,
        domain=DOMAIN,
    )  # fmt: skip


def page(role: Role = Role.VIEWER) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """A GET of the console: logged in (else to the login page), password changed (else to
    the change), the role at least ``role`` (else 403)."""

    def wrap(handler: Page) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            svc = admin_services(request)
            operator = await svc.console.current(request.cookies.get(COOKIE))
            if operator is None:
                return RedirectResponse(LOGIN, status_code=303)
            if operator.must_change and request.url.path != PASSWORD:
                return RedirectResponse(PASSWORD, status_code=303)
            if not operator.may(role):
                return refuse(request, svc)
            return await handler(request, svc, operator)

        return route

    return wrap


def action(role: Role) -> Callable[[Action], Callable[[Request], Awaitable[Response]]]:
    """A POST of the console: a live session (else 401), the role (else 403), the CSRF token
    (else 403), then the handler with the form."""

    def wrap(handler: Action) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            svc = admin_services(request)
            operator = await svc.console.current(request.cookies.get(COOKIE))
            if operator is None:
                return svc.pages.error(
                    request, "Log in", "Your session has ended.", 401, domain=DOMAIN
                )
            if (operator.must_change and request.url.path != PASSWORD) or not operator.may(role):
                return refuse(request, svc)
            form = await read_form(request)
            if form is None or not svc.pages.check_csrf(request, form):
                return stale(request, svc)
            return await handler(request, svc, operator, form)

        return route

    return wrap


async def read_form(request: Request) -> FormData | None:
    """The POST's urlencoded form, bounded; None for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        return None
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        return None
    try:
        return await request.form(max_files=0, max_fields=50)
    except Exception:
        return None


def text(form: FormData | Any, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""
