"""The console's routes, all under ``/admin``."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from gateway.admin import account, apps, audit, dashboard, login, operators, partners, search


def routes() -> list[BaseRoute]:
    actions = [
        Route(f"/admin/accounts/{{account_id}}/{name}", handler, methods=["POST"])
        for name, handler in account.action_routes().items()
    ]
    return [
        Route("/admin", search.search_page, methods=["GET"]),
        Route("/admin/login", login.login_page, methods=["GET"]),
        Route("/admin/login", login.login_submit, methods=["POST"]),
        Route("/admin/password", login.password_page, methods=["GET"]),
        Route("/admin/password", login.password_submit, methods=["POST"]),
        Route("/admin/logout", login.logout, methods=["POST"]),
        Route("/admin/accounts/{account_id}", account.account_page, methods=["GET"]),
        Route("/admin/accounts/{account_id}/export", account.export, methods=["POST"]),
        *actions,
        Route("/admin/audit", audit.audit_page, methods=["GET"]),
        Route("/admin/audit.jsonl", audit.audit_export, methods=["GET"]),
        Route("/admin/dashboard", dashboard.dashboard_page, methods=["GET"]),
        Route("/admin/apps", apps.apps_page, methods=["GET"]),
        Route("/admin/partners", partners.partners_page, methods=["GET"]),
        Route("/admin/partners/disable", partners.disable, methods=["POST"]),
        Route("/admin/partners/rotate", partners.rotate, methods=["POST"]),
        Route("/admin/partners/redeliver", partners.redeliver, methods=["POST"]),
        Route("/admin/operators", operators.operators_page, methods=["GET"]),
        Route("/admin/operators/add", operators.add, methods=["POST"]),
        Route("/admin/operators/reset", operators.reset, methods=["POST"]),
        Route("/admin/operators/disable", operators.disable, methods=["POST"]),
    ]
