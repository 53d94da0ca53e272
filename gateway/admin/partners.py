"""``/admin/partners``: partner services (scopes, apps, webhook) and the state of their webhook
deliveries; for admins: disable, rotate the client secret (shown once), redeliver an event.
The same registry and queue calls as ``gateway partners`` and ``gateway events``
(``gateway.partner_operators``), and an audit row with the operator's name and reason."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin import auth
from gateway.admin.context import AdminServices
from gateway.admin.rendering import render
from gateway.audit import record
from gateway.console.model import OperatorView, Role
from gateway.events import queue
from gateway.partners.registry import RegistryError
from gateway.store.db import UnitOfWork
from gateway.store.models import utcnow

DELIVERIES_SHOWN = 50


async def _audit(svc: AdminServices, request: Request, kind: str, **detail: Any) -> None:
    async def work(s: UnitOfWork) -> None:
        record(s, kind, auth.client(request), **detail)

    await svc.db.run_in_transaction(work)


@auth.page(Role.VIEWER)
async def partners_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    partners = await svc.partners.all()
    chosen = request.query_params.get("partner", "")
    known = {p.client_id for p in partners}
    wanted = queue.Filter(chosen if chosen in known else None, None, None, DELIVERIES_SHOWN)
    deliveries = await queue.listing(svc.db, wanted)
    context = {
        "operator": operator, "section": "partners", "partners": partners,
        "deliveries": deliveries, "chosen": chosen, "may_admin": operator.may(Role.ADMIN),
        "secret": None, "done": request.query_params.get("done", ""),
    }  # fmt: skip
    return render(request, svc, operator, "admin/partners.html", context)


def _reason(form: FormData) -> str:
    return auth.text(form, "reason")


@auth.action(Role.ADMIN)
async def disable(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    client_id, reason = auth.text(form, "partner", 64), _reason(form)
    if not reason or await svc.partners.get(client_id) is None:
        return auth.refuse(request, svc, 400)
    await svc.partners.disable(client_id)
    await _audit(svc, request, "partner_disabled", operator=operator.name, reason=reason,
                 partner=client_id)  # fmt: skip
    return RedirectResponse("/admin/partners?done=disabled", status_code=303)


@auth.action(Role.ADMIN)
async def rotate(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    """A new client secret, shown once on this page (kept hashed); the old one stops working."""
    client_id, reason = auth.text(form, "partner", 64), _reason(form)
    if not reason:
        return auth.refuse(request, svc, 400)
    try:
        secret = await svc.partners.rotate_secret(client_id)
    except RegistryError:
        return auth.refuse(request, svc, 400)
    await _audit(svc, request, "partner_secret_rotated", operator=operator.name, reason=reason,
                 partner=client_id)  # fmt: skip
    context = {
        "operator": operator, "section": "partners", "partners": await svc.partners.all(),
        "deliveries": [], "chosen": client_id, "may_admin": True,
        "secret": {"partner": client_id, "value": secret}, "done": "",
    }  # fmt: skip
    return render(request, svc, operator, "admin/partners.html", context)


@auth.action(Role.ADMIN)
async def redeliver(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    reason = _reason(form)
    try:
        event_id = uuid.UUID(auth.text(form, "event", 64))
    except ValueError:
        return auth.refuse(request, svc, 400)
    if not reason:
        return auth.refuse(request, svc, 400)
    again = await queue.redeliver(svc.db, utcnow(), event_id=event_id)
    await _audit(svc, request, "events_redelivered", operator=operator.name, reason=reason,
                 event=str(event_id), deliveries=again)  # fmt: skip
    return RedirectResponse(f"/admin/partners?done=redelivered&count={again}", status_code=303)
