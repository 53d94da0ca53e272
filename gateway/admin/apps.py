"""``/admin/apps``: the configured apps, read-only, with the health of each app's access token
as this process holds it (fresh until when), and whether the token store shared through
Redis answers."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin import auth
from gateway.admin.context import AdminServices
from gateway.admin.rendering import render
from gateway.console.model import OperatorView, Role

TOKEN_KINDS = ("miniprogram", "official_account")


@auth.page(Role.VIEWER)
async def apps_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    rows = []
    for app in svc.config.apps:
        until = svc.app_tokens.fresh_until(app) if app.kind in TOKEN_KINDS else None
        rows.append(
            {
                "app": app,
                "uses_token": app.kind in TOKEN_KINDS,
                "fresh_until": datetime.fromtimestamp(until, UTC) if until else None,
            }
        )
    context = {
        "operator": operator, "section": "apps", "rows": rows,
        "shared_down": svc.app_tokens.health.down, "sandbox": svc.config.sandbox,
    }  # fmt: skip
    return render(request, svc, operator, "admin/apps.html", context)
