"""The `gateway` command line, run for real in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlmodel import SQLModel

import gateway.accounts.tables
import gateway.store.models  # noqa: F401
from gateway.keyfiles import SECRET_FILE, SIGNING_FILE
from gateway.sessions.keys import SigningKeys, new_key, write_keys_file
from gateway.store import migrate

REPO = Path(__file__).resolve().parent.parent
SECRET_KEY = "cli-test-secret-key-0123456789-abcdefghij"


def run_gateway(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` in ``cwd`` with only the given GATEWAY_* variables set."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    exe = shutil.which("gateway")
    command = [exe] if exe else [sys.executable, "-m", "gateway"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = ok(run_gateway("--help", cwd=tmp_path))
    for command in ("serve", "migrate", "keys", "schema"):
        assert command in out
    assert "SANDBOX MODE" in out
    assert "GATEWAY_CONFIG" in out


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_gateway(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: gateway" in result.stderr


def test_migrate_creates_the_tables_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "data" / "fresh.db"
    db.parent.mkdir()
    url = f"sqlite+aiosqlite:///{db}"
    out = ok(run_gateway("migrate", cwd=tmp_path, GATEWAY_DATABASE_URL=url))
    head = migrate.head_revision()
    assert head is not None
    assert head in out
    assert tables(db) == {*SQLModel.metadata.tables, "alembic_version"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrate.head_revision(),)
        ]
    # migrating needs no secrets and creates none
    assert not (db.parent / SECRET_FILE).exists()
    assert not (tmp_path / SECRET_FILE).exists()
    # and running it again is a no-op
    ok(run_gateway("migrate", cwd=tmp_path, GATEWAY_DATABASE_URL=url))
    assert tables(db) == {*SQLModel.metadata.tables, "alembic_version"}


def test_migrate_without_configuration_uses_the_sqlite_file_in_the_working_dir(
    tmp_path: Path,
) -> None:
    ok(run_gateway("migrate", cwd=tmp_path))
    assert set(SQLModel.metadata.tables) <= tables(tmp_path / "gateway.db")


def _kids(jwks_text: str) -> list[str]:
    jwks = json.loads(jwks_text)
    for key in jwks["keys"]:
        assert "d" not in key, "private key material in `keys show`"
        assert key["alg"] == "ES256"
    return [key["kid"] for key in jwks["keys"]]


def test_keys_rotate_then_show_lists_two_keys_embedded(tmp_path: Path) -> None:
    first = _kids(ok(run_gateway("keys", "show", cwd=tmp_path)))
    assert len(first) == 1
    assert (tmp_path / SIGNING_FILE).stat().st_mode & 0o777 == 0o600
    out = ok(run_gateway("keys", "rotate", cwd=tmp_path))
    kids = _kids(ok(run_gateway("keys", "show", cwd=tmp_path)))
    assert len(kids) == 2
    assert kids[0] == first[0], "rotation must keep the older key for verification"
    assert kids[1] in out, "rotate names the new key"
    assert (tmp_path / SIGNING_FILE).stat().st_mode & 0o777 == 0o600


def test_keys_rotate_then_show_lists_two_keys_production(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    write_keys_file(keys, SigningKeys([new_key()]))
    env = {
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
        "GATEWAY_SIGNING_KEYS": str(keys),
        "GATEWAY_SECRET_KEY": SECRET_KEY,
    }
    ok(run_gateway("keys", "rotate", cwd=tmp_path, **env))
    kids = _kids(ok(run_gateway("keys", "show", cwd=tmp_path, **env)))
    assert len(kids) == 2
    assert len(set(kids)) == 2
    assert keys.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / SIGNING_FILE).exists()


def test_keys_rotate_creates_the_first_production_keys_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    env = {
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
        "GATEWAY_SIGNING_KEYS": str(keys),
        "GATEWAY_SECRET_KEY": SECRET_KEY,
    }
    ok(run_gateway("keys", "rotate", cwd=tmp_path, **env))
    assert keys.stat().st_mode & 0o777 == 0o600
    assert len(_kids(ok(run_gateway("keys", "show", cwd=tmp_path, **env)))) >= 1


def test_schema_prints_the_committed_sdl(tmp_path: Path) -> None:
    committed = (REPO / "schema.graphql").read_text(encoding="utf-8")
    assert ok(run_gateway("schema", cwd=tmp_path)) == committed
    target = tmp_path / "out.graphql"
    ok(run_gateway("schema", "--output", str(target), cwd=tmp_path))
    assert target.read_text(encoding="utf-8") == committed
