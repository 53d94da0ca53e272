"""The `gateway` command line, run for real in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import SQLModel

import gateway.accounts.tables
import gateway.store.models  # noqa: F401
from gateway.keyfiles import SECRET_FILE, SIGNING_FILE
from gateway.sessions.keys import SigningKeys, new_key, write_keys_file
from gateway.store import migrate
from tests.support.cli import ok, run_gateway

REPO = Path(__file__).resolve().parent.parent
SECRET_KEY = "cli-test-secret-key-0123456789-abcdefghij"


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


BAD_ARGUMENTS = {
    "a username that is not UTF-8": [b"accounts", b"find", b"--username", b"\xff"],
    "a client id that is not UTF-8": [b"partners", b"add", b"\xffcrm"],
    "an event kind that is not UTF-8": [b"audit", b"--kind", b"\xc3("],
    "a reason that is not UTF-8": [b"accounts", b"disable", b"x", b"--reason", b"\xed\xa0\x80"],
    "prune beyond any date": [b"audit", b"prune", b"--older-than", b"999999999"],
    "prune nothing old": [b"audit", b"prune", b"--older-than", b"0"],
    "prune by a word": [b"audit", b"prune", b"--older-than", b"ever"],
    "a limit of none": [b"audit", b"--limit", b"0"],
    "a limit beyond 64 bits": [b"audit", b"--limit", b"99999999999999999999"],
    "a date before year 1 in UTC": [b"audit", b"--since", b"0001-01-01T00:00:00+14:00"],
    "a rate limit beyond 32 bits": [b"partners", b"add", b"crm", b"--rate-limit", b"99999999999"],
    "a port beyond 65535": [b"serve", b"--port", b"70000"],
    "a latency that is not a number": [b"sandbox", b"--latency-ms", b"nan"],
}


@pytest.mark.parametrize("argv", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, argv: list[bytes]) -> None:
    """Bytes that are not UTF-8 (Python passes them on as lone surrogates) and numbers or dates
    the command cannot use: one line on stderr, exit status 2, nothing run (no database file),
    never a traceback and never a silent clamp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"gateway", *argv],
        cwd=tmp_path,
        env={**env, "LC_ALL": "C.UTF-8"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("gateway: error: "), stderr
    assert result.stdout == b""
    assert list(tmp_path.iterdir()) == []  # no database was opened or created
