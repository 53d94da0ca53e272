"""``/admin``: find a person by username, account id, phone number (exact: ``139…`` or
``+86139…``), app + openid (exact), unionid (exact, on every configured platform) or nickname
prefix; a table of accounts with their status and apps."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from gateway import phones
from gateway.accounts.model import AccountView, IdentityKey, normalize_username
from gateway.admin import auth
from gateway.admin.context import AdminServices
from gateway.admin.rendering import render
from gateway.console.model import OperatorView, Role
from gateway.errors import InvalidInput

KINDS = ("username", "phone", "id", "openid", "unionid", "nickname")


def _phone(raw: str) -> list[IdentityKey]:
    """The number's key, however it was typed (``gateway.phones``); none for a non-number."""
    try:
        return [IdentityKey.phone(phones.normalise(raw))]
    except InvalidInput:
        return []


def _keys(svc: AdminServices, kind: str, query: str, app: str) -> list[IdentityKey]:
    if kind == "username":
        return [IdentityKey.username(normalize_username(query))]
    if kind == "phone":
        return _phone(query)
    if kind == "openid":
        configured = svc.config.app(app)
        return [IdentityKey.openid(configured.appid, query)] if configured else []
    if kind == "unionid":
        platforms = sorted({a.platform for a in svc.config.apps if a.platform})
        return [IdentityKey.unionid(p, query) for p in platforms]
    return []


async def find(svc: AdminServices, kind: str, query: str, app: str) -> list[AccountView]:
    if not query:
        return []
    if kind == "nickname":
        return await svc.accounts.by_nickname_prefix(query)
    if kind == "id":
        try:
            account_id = uuid.UUID(query)
        except ValueError:
            return []
        return await svc.rights.find(None, account_id)
    found = await svc.accounts.identities_by_key(_keys(svc, kind, query, app))
    ids = list(dict.fromkeys(i.account_id for i in found if i is not None))
    views = await svc.accounts.accounts(ids) if ids else []
    return [v for v in views if v is not None]


@auth.page(Role.VIEWER)
async def search_page(request: Request, svc: AdminServices, operator: OperatorView) -> Response:
    params = request.query_params
    kind = params.get("by", "username")
    kind = kind if kind in KINDS else "username"
    query, app = params.get("q", "").strip()[:128], params.get("app", "")
    results = await find(svc, kind, query, app)
    identities = await svc.accounts.identities([v.id for v in results]) if results else []
    rows = [
        {"account": v, "apps": sorted({i.app_key for i in ids if i.app_key})}
        for v, ids in zip(results, identities, strict=True)
    ]
    context = {
        "operator": operator, "kinds": KINDS, "kind": kind, "query": query, "app": app,
        "apps": svc.config.apps, "rows": rows, "searched": bool(query), "section": "search",
    }  # fmt: skip
    return render(request, svc, operator, "admin/search.html", context)
