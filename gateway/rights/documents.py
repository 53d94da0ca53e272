"""The documents rights and operators read: pure functions from read models to JSON-ready dicts.

Nothing sealed, hashed or raw from WeChat goes in: no session keys, no token hashes, no openid
or unionid in what the person gets (operators' ``show`` names identities in full: they need
them to answer a support ticket).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from gateway.accounts.model import AccountView, IdentityKind, IdentityView
from gateway.audit import AuditView
from gateway.sessions.model import SessionView

AppName = Callable[[str | None], dict[str, str] | None]

_NOT_THEIRS = frozenset({"login_failed"})
"""Events whose client facts may be someone else's (a stranger guessing the password)."""


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def account(view: AccountView) -> dict[str, Any]:
    return {
        "id": str(view.id),
        "status": view.status,
        "createdAt": _at(view.created_at),
        "nickname": view.nickname,
        "avatarUrl": view.avatar_url,
        "deletionRequestedAt": _at(view.deletion_requested_at),
        "deletionDueAt": _at(view.deletion_due_at),
    }


def own_identity(view: IdentityView, app: AppName) -> dict[str, Any]:
    """An identity as its person sees it: usernames and phones in full, WeChat ids never."""
    item: dict[str, Any] = {
        "id": str(view.id),
        "kind": view.kind.value,
        "app": app(view.app_key),
        "linkedAt": _at(view.created_at),
    }
    if view.kind == IdentityKind.USERNAME:
        item["username"] = view.subject
    elif view.kind == IdentityKind.PHONE:
        item["phone"] = view.subject
    return item


def session(view: SessionView, app: AppName) -> dict[str, Any]:
    return {
        "id": str(view.id),
        "app": app(view.app_key),
        "platform": view.platform,
        "channel": view.channel,
        "deviceParam": view.device_param,
        "ip": view.ip,
        "userAgent": view.user_agent,
        "createdAt": _at(view.created_at),
        "lastUsedAt": _at(view.last_used_at),
        "expiresAt": _at(view.expires_at),
        "revokedAt": _at(view.revoked_at),
    }


def own_event(event: AuditView) -> dict[str, Any]:
    item = event.as_dict()
    if event.kind in _NOT_THEIRS:
        for name in ("platform", "channel", "deviceParam", "ip", "userAgent"):
            item[name] = None
    return item


def personal_data(
    view: AccountView,
    identities: Sequence[IdentityView],
    sessions: Sequence[SessionView],
    events: Sequence[AuditView],
    app: AppName,
    now: datetime,
) -> dict[str, Any]:
    """Everything the gateway holds about one person (PIPL art. 45)."""
    return {
        "generatedAt": _at(now),
        "account": account(view),
        "identities": [own_identity(i, app) for i in identities],
        "sessions": [session(s, app) for s in sessions],
        "auditEvents": [own_event(e) for e in events],
    }


def operator_view(
    view: AccountView,
    identities: Sequence[IdentityView],
    sessions: Sequence[SessionView],
    events: Sequence[AuditView],
    merged_from: Sequence[AccountView],
    app: AppName,
) -> dict[str, Any]:
    """``gateway accounts show``: the account, its identities in full, live sessions, the last
    events and what merged into it."""
    return {
        "account": account(view)
        | {
            "mergedInto": str(view.merged_into_id) if view.merged_into_id else None,
            "disabledReason": view.disabled_reason,
            "deletedAt": _at(view.deleted_at),
        },
        "identities": [
            {
                "id": str(i.id),
                "kind": i.kind.value,
                "scope": i.scope,
                "subject": i.subject,
                "app": i.app_key,
                "linkedAt": _at(i.created_at),
            }
            for i in identities
        ],
        "sessions": [session(s, app) for s in sessions],
        "lastEvents": [e.as_dict() for e in events],
        "mergedFrom": [{"id": str(m.id), "createdAt": _at(m.created_at)} for m in merged_from],
    }
