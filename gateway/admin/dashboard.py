"""``/admin/dashboard``: the last 24 hours from the audit trail: logins per hour per app,
failed logins by reason, new and merged accounts, deletions requested and pending. Charts are
inline SVG drawn here on the server: nothing from another host, no script."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import auth
from gateway.admin.context import AdminServices
from gateway.admin.rendering import render
from gateway.audit import Tallied, tallied
from gateway.console.model import OperatorView, Role
from gateway.store.models import utcnow

HOURS = 24
KINDS = ("login", "register", "login_failed", "merge", "deletion_requested")
PENDING_LIMIT = 10_000


def _hourly(events: list[Tallied], start_hour: float) -> dict[str, list[int]]:
    """Per app: logins (and registrations) in each of the last ``HOURS`` hours, oldest first."""
    series: dict[str, list[int]] = {}
    for e in events:
        if e.kind not in ("login", "register"):
            continue
        slot = int((e.created_at.timestamp() - start_hour) // 3600)
        if 0 <= slot < HOURS:
            series.setdefault(e.app_key or "—", [0] * HOURS)[slot] += 1
    return dict(sorted(series.items()))


def _bars(values: list[int], width: int = 480, height: int = 60) -> list[dict[str, float]]:
    """The rectangles of a bar chart of ``values`` (SVG user units)."""
    top = max(values) or 1
    step = width / len(values)
    return [
        {"x": i * step + 1, "y": height - v * height / top, "w": step - 2, "h": v * height / top,
         "v": v}
        for i, v in enumerate(values)
    ]  # fmt: skip


@auth.page(Role.VIEWER)
async def dashboard_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    now = utcnow()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    events = await tallied(svc.db, start, KINDS)
    counts = Counter(e.kind for e in events)
    failures = Counter(e.reason or "—" for e in events if e.kind == "login_failed")
    top = max(failures.values(), default=1)
    pending = await svc.accounts.due_for_deletion(now + timedelta(days=36_500), PENDING_LIMIT)
    context = {
        "operator": operator, "section": "dashboard",
        "charts": [
            {"app": app, "bars": _bars(values), "total": sum(values)}
            for app, values in _hourly(events, start.timestamp()).items()
        ],
        "failures": [(reason, n, 100 * n / top) for reason, n in failures.most_common(12)],
        "counts": counts, "pending": len(pending), "pending_cut": len(pending) >= PENDING_LIMIT,
        "since": start,
    }  # fmt: skip
    return render(request, svc, operator, "admin/dashboard.html", context)
