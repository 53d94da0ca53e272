"""What one answer was, in one word: ``ok``, ``expected`` (a refusal the client asked for),
a typed error code, ``5xx``, ``masked`` (a GraphQL error without a code, such as the masked
"Internal server error.": it counts like a 5xx), ``lost`` (the connection died mid-request:
the killed process's in-flight requests) or ``refused`` (no gateway took the connection)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from bench.soak.queries import EXPECTED, SUCCESS

TEMPORARY = frozenset(
    {
        "UNAVAILABLE",
        "TEMPORARILY_UNAVAILABLE",
        "UPSTREAM_UNAVAILABLE",
        "UPSTREAM_ERROR",
        "RATE_LIMITED",
        "THROTTLED",
    }
)
"""Typed temporary refusals: fine during a fault and the 15 s after it, never otherwise."""

SHED = "shed"
"""The password hasher's admission refusing a check (TEMPORARILY_UNAVAILABLE, "too many
password checks at once": issue 13's load shedding on a busy machine), not a fault's trace:
fine at any time, and reported."""

SERVER_FAULTS = frozenset({"5xx", "masked"})
CONNECTION = frozenset({"lost", "refused"})


@dataclass(frozen=True)
class Outcome:
    t: float  # seconds into the soak when the answer came
    op: str
    latency: float  # seconds
    result: str
    port: int  # the gateway that answered (0: none)


@dataclass(frozen=True)
class Classified:
    result: str
    node: dict[str, Any] | None = None


def classify(op: str, status: int, body: bytes) -> Classified:  # noqa: PLR0911 - one per kind
    """``status`` 0: lost mid-request; -1: refused by every gateway."""
    if status == 0:
        return Classified("lost")
    if status < 0:
        return Classified("refused")
    try:
        answer = json.loads(body)
    except ValueError:
        return Classified("5xx" if status >= 500 else f"HTTP {status}")
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        code = (errors[0].get("extensions") or {}).get("code")
        return Classified(str(code) if code else "masked")
    if status >= 500:
        return Classified("5xx")
    if status != 200:
        return Classified(f"HTTP {status}")
    return _node(op, answer.get("data") or {})


def _node(op: str, data: dict[str, Any]) -> Classified:  # noqa: PLR0911 - one per kind
    node = next(iter(data.values()), None) if data else None
    if op == "viewer":
        ok = isinstance(node, dict) and bool(node.get("id"))
        return Classified("ok" if ok else "no viewer", node)
    if op == "partner lookup":
        inner = (node or {}).get("account") or {}
        if inner.get("__typename") == "AccountLookup":
            return Classified("ok" if inner.get("found") else "not found", inner)
        return Classified(str(inner.get("code") or (node or {}).get("code") or "no answer"))
    if not isinstance(node, dict):
        return Classified("no answer")
    if node.get("__typename") == SUCCESS.get(op):
        return Classified("ok", node)
    code = str(node.get("code") or node.get("__typename"))
    if code == "TEMPORARILY_UNAVAILABLE" and "password checks" in str(node.get("message")):
        return Classified(SHED, node)
    if code in EXPECTED.get(op, set()):
        return Classified("expected", node)
    return Classified(code, node)


def account_uuid(opaque: str) -> str:
    """The database id behind an ``Account`` node id (base64 of ``Account:<uuid>``)."""
    raw = base64.b64decode(opaque + "=" * (-len(opaque) % 4)).decode()
    return str(uuid.UUID(raw.split(":", 1)[1]))
