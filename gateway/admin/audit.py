"""``/admin/audit``: the audit trail, filtered by kind, account, app, operator and time range,
a page at a time, and the same selection as JSON lines (``/admin/audit.jsonl``, what
``gateway audit`` prints). Every role reads it; a viewer's copy is masked."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import auth, masking
from gateway.admin.context import AdminServices
from gateway.admin.rendering import render
from gateway.audit import AuditQuery
from gateway.console.model import OperatorView, Role

PAGE = 50
EXPORT_LIMIT = 10_000
FILTERS = ("kind", "account", "app", "operator", "since", "until")


def _instant(raw: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _account(raw: str) -> tuple[uuid.UUID, ...] | None:
    """The account filter: none, one id, or None for an unreadable one (nothing matches)."""
    if not raw:
        return ()
    try:
        return (uuid.UUID(raw),)
    except ValueError:
        return None


def query(request: Request, limit: int, offset: int = 0) -> AuditQuery | None:
    """The filters of the request as a query; None when the account filter names no id."""
    given = {name: request.query_params.get(name, "").strip()[:128] for name in FILTERS}
    accounts = _account(given["account"])
    if accounts is None:
        return None
    return AuditQuery(
        accounts, given["kind"] or None, _instant(given["since"]), limit,
        app_key=given["app"] or None, operator=given["operator"] or None,
        until=_instant(given["until"]), offset=offset,
    )  # fmt: skip


@auth.page(Role.VIEWER)
async def audit_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    page_number = request.query_params.get("page", "1")
    number = int(page_number) if page_number.isdigit() and 0 < int(page_number) < 10_000 else 1
    selection = query(request, PAGE + 1, (number - 1) * PAGE)
    events = await svc.rights.audit_events(selection) if selection else []
    filters = {name: request.query_params.get(name, "") for name in FILTERS}
    kept = {k: v for k, v in filters.items() if v}
    context = {
        "operator": operator,
        "section": "audit",
        "filters": filters,
        "events": [
            e.as_dict() | {"detail_text": json.dumps(e.detail, ensure_ascii=False)}
            for e in events[:PAGE]
        ],
        "page": number,
        "newer": f"?{urlencode(kept | {'page': number - 1})}" if number > 1 else "",
        "older": f"?{urlencode(kept | {'page': number + 1})}" if len(events) > PAGE else "",
        "export": f"/admin/audit.jsonl?{urlencode(kept)}",
    }
    return render(request, svc, operator, "admin/audit.html", context)


@auth.page(Role.VIEWER)
async def audit_export(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    selection = query(request, EXPORT_LIMIT)
    events = await svc.rights.audit_events(selection) if selection else []
    body = "".join(json.dumps(e.as_dict(), ensure_ascii=False) + "\n" for e in events)
    if not operator.may(Role.SUPPORT):
        body = masking.text(body)
    headers = {
        "content-disposition": 'attachment; filename="audit.jsonl"',
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
    }
    return Response(body, media_type="application/x-ndjson", headers=headers)
