"""``/admin/operators`` (admins only): the console's operators; add one, disable one (its
sessions end at once), reset one (a new one-time password and TOTP secret). New credentials
are shown once on the answering page, as ``gateway operators add|reset`` prints them: the
same use case (``gateway.console.service.Console``), audited with the operator and reason."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin import auth
from gateway.admin.context import AdminServices
from gateway.admin.rendering import render
from gateway.console.model import ConsoleError, Credentials, OperatorView, Role


async def _page(
    request: Request,
    svc: AdminServices,
    operator: OperatorView,
    made: Credentials | None = None,
    error: str = "",
) -> Response:
    context = {
        "operator": operator, "section": "operators", "operators": await svc.console.operators(),
        "roles": [r.value for r in Role], "made": made, "error": error,
        "done": request.query_params.get("done", ""),
    }  # fmt: skip
    return render(request, svc, operator, "admin/operators.html", context, 400 if error else 200)


@auth.page(Role.ADMIN)
async def operators_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    return await _page(request, svc, operator)


@auth.action(Role.ADMIN)
async def add(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    name, role, reason = (
        auth.text(form, "name", 64),
        auth.text(form, "role", 16),
        auth.text(form, "reason"),
    )
    if role not in {r.value for r in Role} or not reason:
        return await _page(request, svc, operator, error="Give a name, a role and a reason.")
    try:
        made = await svc.console.add(name, Role(role), operator.name, auth.client(request), reason)
    except ConsoleError:
        return await _page(request, svc, operator, error="This name is taken or not allowed.")
    return await _page(request, svc, operator, made)


@auth.action(Role.ADMIN)
async def reset(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    name, reason = auth.text(form, "name", 64), auth.text(form, "reason")
    if not reason:
        return await _page(request, svc, operator, error="Give a reason.")
    try:
        made = await svc.console.reset(name, operator.name, auth.client(request), reason)
    except ConsoleError:
        return auth.refuse(request, svc, 404)
    return await _page(request, svc, operator, made)


@auth.action(Role.ADMIN)
async def disable(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    name, reason = auth.text(form, "name", 64), auth.text(form, "reason")
    if not reason or name == operator.name:  # never lock oneself out from here
        return await _page(
            request, svc, operator, error="Give a reason; you cannot disable yourself."
        )
    try:
        await svc.console.disable(name, operator.name, auth.client(request), reason)
    except ConsoleError:
        return auth.refuse(request, svc, 404)
    return RedirectResponse("/admin/operators?done=operator_disabled", status_code=303)
