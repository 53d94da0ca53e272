"""A write path cannot forget the token cache: every function that revokes, deletes or moves
login sessions, or changes an account row, names what it changed (``broadcast.changed``), so
that every replica drops it when the transaction commits."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway

GUARDED = {"Account", "LoginSession"}
SESSION_FIELDS = {"revoked_at", "account_id", "expires_at"}
PREBUILT_WRITES = {"TOUCH_SESSION"}  # sessions.repository: its SET columns come at execution


def _table(call: ast.AST) -> str | None:
    """``update(T)``/``delete(T)`` at the root of a statement chain: T's name."""
    while isinstance(call, ast.Call):
        func = call.func
        if isinstance(func, ast.Name) and func.id in ("update", "delete") and call.args:
            arg = call.args[0]
            return arg.id if isinstance(arg, ast.Name) else None
        call = func.value if isinstance(func, ast.Attribute) else func
    return None


def _writes_guarded(func: ast.AST) -> bool:
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and node.id in PREBUILT_WRITES:
            return True
        if isinstance(node, ast.Call):
            func_ = node.func
            if isinstance(func_, ast.Name) and func_.id == "delete" and _table(node) in GUARDED:
                return True
            if isinstance(func_, ast.Attribute) and func_.attr == "values":
                table = _table(func_.value)
                fields = {kw.arg for kw in node.keywords}
                if (
                    table == "Account"
                    or "revoked_at" in fields  # however the statement was built
                    or (table == "LoginSession" and (None in fields or fields & SESSION_FIELDS))
                ):
                    return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr == "revoked_at" for t in node.targets
        ):
            return True
    return False


def _names_changes(func: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "changed"
        for n in ast.walk(func)
    )


def test_every_write_of_sessions_or_accounts_invalidates_the_token_cache() -> None:
    root = Path(gateway.__file__).parent
    forgotten, checked = [], 0
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _writes_guarded(node):
                checked += 1
                if not _names_changes(node):
                    forgotten.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}")
    # the guard sees the known write paths (sessions revokes in one: repository._revoke)
    assert checked >= 10
    assert forgotten == [], "call gateway.store.broadcast.changed(s, ...) in these"
