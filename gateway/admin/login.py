"""The console's login (name, password, TOTP code), the first login's password change, and
logout. The login form is CSRF-checked like every other form; failures are counted by the
console's throttle (``gateway.console.service``)."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin import auth
from gateway.admin.auth import DOMAIN
from gateway.admin.context import AdminServices, admin_services
from gateway.console.model import LoginRefused, OperatorView, Role
from gateway.errors import TemporarilyUnavailable, Throttled, WeakPassword

HOME = "/admin"


async def login_page(request: Request) -> Response:
    svc = admin_services(request)
    if await svc.console.current(request.cookies.get(auth.COOKIE)) is not None:
        return RedirectResponse(HOME, status_code=303)
    return _form(request, svc)


def _form(request: Request, svc: AdminServices, error: str = "", status: int = 200) -> Response:
    context = {"error": error, "operator": None, "section": ""}
    return svc.pages.render(request, "admin/login.html", context, status=status, domain=DOMAIN)


async def login_submit(request: Request) -> Response:
    svc = admin_services(request)
    form = await auth.read_form(request)
    if form is None or not svc.pages.check_csrf(request, form):
        return auth.stale(request, svc)
    name, password = auth.text(form, "name", 64), auth.text(form, "password", 1024)
    code = auth.text(form, "code", 16)
    try:
        _, cookie = await svc.console.login(name, password, code, auth.client(request))
    except LoginRefused:
        return _form(request, svc, "Wrong name, password or code.", 401)
    except Throttled:
        return _form(request, svc, "Too many failed attempts: wait before trying again.", 429)
    except TemporarilyUnavailable:
        return _form(request, svc, "Briefly unavailable; try again shortly.", 503)
    response = RedirectResponse(HOME, status_code=303)
    auth.set_cookie(svc, response, cookie)
    return response


@auth.page(Role.VIEWER)
async def password_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    return _password_form(request, svc, operator)


def _password_form(
    request: Request, svc: AdminServices, operator: OperatorView, error: str = "", status: int = 200
) -> Response:
    context = {"error": error, "operator": operator, "section": ""}
    return svc.pages.render(request, "admin/password.html", context, status=status, domain=DOMAIN)


@auth.action(Role.VIEWER)
async def password_submit(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    current, new = auth.text(form, "current", 1024), auth.text(form, "new", 1024)
    if new != auth.text(form, "repeat", 1024):
        return _password_form(request, svc, operator, "The new passwords differ.", 400)
    try:
        await svc.console.change_password(operator, current, new, auth.client(request))
    except LoginRefused:
        return _password_form(request, svc, operator, "The current password is wrong.", 400)
    except WeakPassword:
        return _password_form(request, svc, operator, "Choose a longer, less common password.", 400)
    return RedirectResponse(HOME, status_code=303)


@auth.action(Role.VIEWER)
async def logout(request: Request, svc: AdminServices, _: OperatorView, __: FormData) -> Response:
    await svc.console.logout(request.cookies.get(auth.COOKIE, ""))
    response = RedirectResponse(auth.LOGIN, status_code=303)
    auth.clear_cookie(svc, response)
    return response
