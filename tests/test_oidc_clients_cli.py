"""`gateway clients ...` run for real: what it refuses (exit 1 with the reason), what it prints
(JSON; a secret only once), and the audit rows it leaves."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import ok, run_gateway

SITE = "https://shop.example/callback"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    ok(run_gateway("migrate", cwd=tmp_path))
    return tmp_path


def clients(home: Path, *args: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(ok(run_gateway("clients", *args, cwd=home)))
    return answer


def refused(home: Path, *args: str) -> str:
    result = run_gateway("clients", *args, cwd=home)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    return result.stderr


def test_add_prints_the_client_and_its_secret_once(home: Path) -> None:
    added = clients(
        home, "add", "Shop", "--redirect-uri", SITE, "--redirect-uri", "http://127.0.0.1:3000/cb",
        "--post-logout-redirect-uri", "https://shop.example/", "--first-party",
        "--scopes", "openid,profile,phone",
    )  # fmt: skip
    assert added["redirect_uris"] == [SITE, "http://127.0.0.1:3000/cb"]
    assert added["first_party"] is True
    assert added["public"] is False
    assert len(added["client_secret"]) >= 43
    # never an id a command line takes for an option (a random "-…" once failed CI here)
    assert re.fullmatch("[0-9a-f]{32}", added["client_id"])
    shown = clients(home, "show", added["client_id"])
    assert "client_secret" not in shown
    assert shown["scopes"] == ["openid", "phone", "profile"]
    rotated = clients(home, "rotate-secret", added["client_id"])
    assert rotated["client_secret"] != added["client_secret"]
    with sqlite3.connect(home / "gateway.db") as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM audit_events ORDER BY created_at")]
        stored = db.execute("SELECT secret_hash FROM oidc_clients").fetchone()[0]
    assert kinds == ["oidc_client_added", "oidc_client_secret_rotated"]
    assert rotated["client_secret"] not in stored


def test_what_the_cli_refuses(home: Path) -> None:
    assert "unknown scopes" in refused(
        home, "add", "A", "--redirect-uri", SITE, "--scopes", "openid,email"
    )
    assert "openid" in refused(home, "add", "A", "--redirect-uri", SITE, "--scopes", "profile")
    assert "fragment" in refused(home, "add", "A", "--redirect-uri", SITE + "#x")
    assert "http(s)" in refused(home, "add", "A", "--redirect-uri", "javascript:alert(1)")
    public = clients(home, "add", "SPA", "--redirect-uri", SITE, "--public")
    assert "client_secret" not in public
    assert "public" in refused(home, "rotate-secret", public["client_id"])
    assert "no client" in refused(home, "show", "nope")
    assert "no client" in refused(home, "disable", "nope")
    account = "00000000-0000-0000-0000-000000000001"
    answer = clients(home, "revoke-consent", public["client_id"], "--account", account)
    assert answer["revoked"] is False
