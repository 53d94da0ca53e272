"""``/admin/accounts/<id>``: one person's account graph (status, profile, identities per app,
login sessions with their client facts, the last 100 audit events, merges), and the actions
on it. Every action asks for a reason and goes through the rights use case the CLI calls
(``gateway.rights.service.Rights``), so the audit row names the operator and the reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.admin import auth, masking
from gateway.admin.context import AdminServices
from gateway.admin.rendering import render
from gateway.console.model import OperatorView, Role
from gateway.errors import LastIdentity, NotFound
from gateway.events import queue
from gateway.rights.service import Operator

EVENTS_SHOWN = 100
PARTNER_EVENTS_SHOWN = 50


def _account_id(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(request.path_params["account_id"]))
    except ValueError:
        return None


def _masked(shown: dict[str, Any]) -> dict[str, Any]:
    """A viewer's copy: phone numbers and WeChat ids masked."""
    identities = []
    for item in shown["identities"]:
        subject = item["subject"]
        if item["kind"] == "phone":
            subject = masking.phone(subject)
        elif item["kind"] in ("wechat_openid", "wechat_unionid"):
            subject = masking.identifier(subject)
        identities.append(item | {"subject": subject})
    return shown | {"identities": identities}


@auth.page(Role.VIEWER)
async def account_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    account_id = _account_id(request)
    if account_id is None:
        return auth.refuse(request, svc, 404)
    try:
        shown = await svc.rights.show(account_id, events=EVENTS_SHOWN)
    except NotFound:
        return auth.refuse(request, svc, 404)
    if not operator.may(Role.SUPPORT):
        shown = _masked(shown)
    partner_events = await queue.listing(
        svc.db, queue.Filter(account=account_id, limit=PARTNER_EVENTS_SHOWN, newest_first=True)
    )
    events = [
        e | {"detail_text": json.dumps(e["detail"], ensure_ascii=False)}
        for e in shown["lastEvents"]
    ]
    context = {
        "operator": operator, "shown": shown, "events": events,
        "may_support": operator.may(Role.SUPPORT), "may_admin": operator.may(Role.ADMIN),
        "done": request.query_params.get("done", ""), "section": "search",
        "partner_events": partner_events,
    }  # fmt: skip
    return render(request, svc, operator, "admin/account.html", context)


Act = Callable[[AdminServices, uuid.UUID, Operator, FormData], Awaitable[str]]


async def _disable(svc: AdminServices, account_id: uuid.UUID, by: Operator, _: FormData) -> str:
    await svc.rights.set_disabled(account_id, True, by)
    return "disabled"


async def _enable(svc: AdminServices, account_id: uuid.UUID, by: Operator, _: FormData) -> str:
    await svc.rights.set_disabled(account_id, False, by)
    return "enabled"


async def _revoke(svc: AdminServices, account_id: uuid.UUID, by: Operator, _: FormData) -> str:
    await svc.rights.revoke_sessions(account_id, by)
    return "revoked"


async def _unlink(svc: AdminServices, account_id: uuid.UUID, by: Operator, form: FormData) -> str:
    try:
        identity_id = uuid.UUID(auth.text(form, "identity", 64))
    except ValueError:
        raise NotFound("No identity with this id.") from None
    await svc.rights.unlink_identity(account_id, identity_id, by)
    return "unlinked"


async def _cancel(svc: AdminServices, account_id: uuid.UUID, by: Operator, _: FormData) -> str:
    await svc.rights.cancel_deletion(account_id, by)
    return "cancelled"


async def _delete(svc: AdminServices, account_id: uuid.UUID, by: Operator, _: FormData) -> str:
    await svc.rights.request_deletion(account_id, by)
    return "deletion_requested"


ACTIONS: dict[str, tuple[Role, Act]] = {
    "disable": (Role.SUPPORT, _disable),
    "enable": (Role.SUPPORT, _enable),
    "revoke": (Role.SUPPORT, _revoke),
    "unlink": (Role.SUPPORT, _unlink),
    "cancel-deletion": (Role.SUPPORT, _cancel),
    "request-deletion": (Role.ADMIN, _delete),
}


def _action(name: str, role: Role, act: Act) -> Callable[[Request], Awaitable[Response]]:
    @auth.action(role)
    async def route(
        request: Request, svc: AdminServices, operator: OperatorView, form: FormData
    ) -> Response:
        account_id = _account_id(request)
        reason = auth.text(form, "reason")
        if account_id is None:
            return auth.refuse(request, svc, 404)
        if not reason:
            return svc.pages.error(
                request, "Something went wrong", "Give a reason.", 400, domain=auth.DOMAIN
            )
        try:
            done = await act(
                svc, account_id, Operator(operator.name, reason, auth.client(request)), form
            )
        except NotFound:
            return auth.refuse(request, svc, 404)
        except LastIdentity:
            return svc.pages.error(
                request, "Something went wrong", "The last way in cannot be removed.", 400,
                domain=auth.DOMAIN,
            )  # fmt: skip
        return RedirectResponse(f"/admin/accounts/{account_id}?done={done}", status_code=303)

    route.__name__ = f"account_{name}"
    return route


def action_routes() -> dict[str, Callable[[Request], Awaitable[Response]]]:
    return {name: _action(name, role, act) for name, (role, act) in ACTIONS.items()}


@auth.action(Role.ADMIN)
async def export(
    request: Request, svc: AdminServices, operator: OperatorView, form: FormData
) -> Response:
    """The person's personal-data document (PIPL art. 45) as a download; audited."""
    account_id, reason = _account_id(request), auth.text(form, "reason")
    if account_id is None or not reason:
        return auth.refuse(request, svc, 404 if account_id is None else 400)
    try:
        document = await svc.rights.export(
            account_id, Operator(operator.name, reason, auth.client(request))
        )
    except NotFound:
        return auth.refuse(request, svc, 404)
    headers = {
        "content-disposition": f'attachment; filename="account-{account_id}.json"',
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
    }
    body = json.dumps(document, ensure_ascii=False, indent=2)
    return Response(body, media_type="application/json", headers=headers)
