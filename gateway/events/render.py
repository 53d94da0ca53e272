"""An event as one partner sees it: the same body in a webhook and in the pull feed.

Account ids are opaque, as the partner's lookups show them (the GraphQL global id of the
account); identifiers appear only where the partner's entitlements allow, decided by
``Entitlements.visible``, the rule its lookups use.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from gateway.accounts.model import IdentityKind, IdentityView
from gateway.outbox import IDENTIFIER, AccountEvent, EventType
from gateway.partners.entitlements import Entitlements
from gateway.partners.registry import PartnerView


def opaque_id(type_name: str, id: uuid.UUID | str) -> str:
    """A node's global id (``base64("Type:id")``), as the GraphQL API writes it."""
    return base64.b64encode(f"{type_name}:{id}".encode()).decode()


def body(event: AccountEvent, partner: PartnerView, rules: Entitlements) -> dict[str, Any]:
    """``{"type", "timestamp", "data"}``: the Standard Webhooks payload, and the feed's node."""
    return {
        "type": event.type.value,
        "timestamp": utc(event.occurred_at),
        "data": data(event, partner, rules),
    }


def utc(at: datetime | str) -> str:
    """Every time a partner reads, one spelling: ISO 8601 in UTC with ``Z``."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def data(event: AccountEvent, partner: PartnerView, rules: Entitlements) -> dict[str, Any]:
    stored = event.data
    shown: dict[str, Any] = {"accountId": opaque_id("Account", event.account_id)}
    if event.type == EventType.ACCOUNT_MERGED:
        shown["survivorId"] = opaque_id("Account", stored["survivor_id"])
        shown["mergedId"] = opaque_id("Account", stored["merged_id"])
    if "due_at" in stored:
        shown["deletionDueAt"] = utc(stored["due_at"])
    if "identity" in stored:
        shown["identity"] = _identity(stored["identity"], event.account_id, partner, rules)
    if "identities" in stored:
        identities = (_identity(i, event.account_id, partner, rules) for i in stored["identities"])
        shown["identities"] = [i for i in identities if i is not None]
    return shown


def _identity(
    stored: dict[str, Any], account_id: uuid.UUID, partner: PartnerView, rules: Entitlements
) -> dict[str, Any] | None:
    subject = stored.get(IDENTIFIER)
    view = IdentityView(
        id=uuid.UUID(stored["id"]),
        account_id=account_id,
        kind=IdentityKind(stored["kind"]),
        scope=stored.get("scope", ""),
        subject=subject or "",
        app_key=stored.get("app_key"),
        created_at=datetime.fromisoformat(stored["linked_at"]),
    )
    shown = rules.visible(partner, [view])
    if not shown:
        return None
    (v,) = shown
    return {
        "id": opaque_id("Identity", v.id),
        "kind": v.kind.name,  # as the GraphQL enum spells it: WECHAT_OPENID
        "app": v.app_key,
        "platform": v.platform,
        "linkedAt": utc(stored["linked_at"]),
        "openid": v.openid or None,
        "unionid": v.unionid or None,
    }
