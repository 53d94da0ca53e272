"""What a serving process keeps in memory is bounded, and what it never uses is never imported.

Issue 29 (a 10-minute soak's process grew ~1 MiB a minute; a gateway's peak RSS over 110 MiB)
found in-process memos that held entries long after they could serve (the token cache's
entries past their 5 s, whole tokens as the verified-signature memo's keys) and libraries
imported by every process that only some requests use (Pillow, phonenumbers, Jinja2, Babel,
SQLAlchemy's PostgreSQL dialect on SQLite), and that docstrings cost ~6 MiB a process (the
image serves under -OO). These tests hold the bounds by behaviour (counts, modules, the schema
under -OO), never by measuring memory or time.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.accounts.model import AccountView
from gateway.api.schema import export_sdl
from gateway.sessions import tokens
from gateway.sessions.cache import TokenCache
from gateway.sessions.keys import SigningKeys, new_key, write_keys_file
from gateway.sessions.tokens import AccessClaims, AccessTokens, TokenRejected
from gateway.store.broadcast import Broadcast


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _account() -> AccountView:
    return AccountView(uuid.uuid4(), "active", datetime.now(UTC), None, None, None)


def _put(cache: TokenCache, broadcast: Broadcast, session_id: uuid.UUID) -> None:
    now = datetime.now(UTC)
    cache.put(broadcast.epoch, session_id, _account(), "mp", now + timedelta(hours=1), now)


def test_the_token_cache_holds_only_entries_young_enough_to_be_believed() -> None:
    broadcast, clock = Broadcast(), Clock()
    cache = TokenCache(broadcast, size=10_000, max_age=5.0, clock=clock)
    for _ in range(100):
        _put(cache, broadcast, uuid.uuid4())
        clock.now += 0.1  # 100 sessions over 10 s: only the last 5 s are worth keeping
    assert 45 <= len(cache) <= 51
    clock.now += 60
    newest = uuid.uuid4()
    _put(cache, broadcast, newest)
    assert len(cache) == 1
    assert cache.get(newest) is not None


def test_the_token_cache_never_holds_more_than_its_size() -> None:
    broadcast, clock = Broadcast(), Clock()
    cache = TokenCache(broadcast, size=10, clock=clock)
    ids = [uuid.uuid4() for _ in range(25)]
    for session_id in ids:
        _put(cache, broadcast, session_id)
    assert len(cache) == 10
    assert cache.get(ids[-1]) is not None
    assert cache.get(ids[0]) is None


def test_the_verified_token_memo_is_bounded_and_forgets_nothing_it_must_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_TOKENS", 8)
    access = AccessTokens(SigningKeys([new_key()]), "https://gateway.test")
    now = datetime.now(UTC).replace(microsecond=0)  # a token's exp is in whole seconds
    issued = [
        (claims, access.issue(claims, now))
        for claims in (
            AccessClaims(uuid.uuid4(), uuid.uuid4(), "mp", now + timedelta(minutes=15))
            for _ in range(20)
        )
    ]
    for claims, token in issued:
        assert access.check(token) == claims
    assert access.remembered() == 8
    first_claims, first = issued[0]
    assert access.check(first) == first_claims  # forgotten, so verified again
    assert access.remembered() == 8
    tampered = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenRejected):
        access.check(tampered)
    assert access.remembered() == 8


NEVER_IMPORTED = (
    "PIL",
    "phonenumbers",
    "jinja2",
    "babel",
    "matplotlib",
    "numpy",
    "sqlalchemy.dialects.postgresql",
    "asyncpg",
)

_PROBE = """
import asyncio, json, sys
from gateway.app import create_app
app = create_app()
async def main():
    async with app.router.lifespan_context(app):
        pass
asyncio.run(main())
print(json.dumps(sorted(m for m in sys.modules if m in {names!r})))
"""


def test_a_serving_process_on_sqlite_imports_no_page_avatar_sms_or_plot_library(
    tmp_path: Path,
) -> None:
    """Started and stopped on SQLite with no request: none of ``NEVER_IMPORTED`` is loaded
    (each is imported by the first request that needs it: a page, an avatar, an SMS, a
    message's catalogue; matplotlib and numpy are the soak report's, never the server's)."""
    keys = tmp_path / "keys.json"
    write_keys_file(keys, SigningKeys([new_key()]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[[apps]]\nkey = "mp"\nkind = "miniprogram"\nappid = "wx0000000000000001"\n'
        'secret = "s3cr3t"\nplatform = "plat"\nname = "MP"\n',
        encoding="utf-8",
    )
    env.update(
        GATEWAY_CONFIG=str(config),
        GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}",
        GATEWAY_SECRET_KEY="probe-secret-key-0123456789abcdefghijklmnop",
        GATEWAY_SIGNING_KEYS=str(keys),
        GATEWAY_WECHAT_API_BASE="http://127.0.0.1:9",
    )
    run = functools.partial(subprocess.run, env=env, cwd=tmp_path, capture_output=True, text=True)
    migrated = run([sys.executable, "-m", "gateway", "migrate"])
    assert migrated.returncode == 0, migrated.stderr
    out = run([sys.executable, "-c", _PROBE.format(names=set(NEVER_IMPORTED))])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_schema_served_under_oo_is_the_schema() -> None:
    """The image serves with ``python -OO`` (no docstrings in memory, ~6 MiB less per process):
    every description a client sees is a string of its own, never a docstring that -OO drops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    script = "import sys; from gateway.api.schema import export_sdl; sys.stdout.write(export_sdl())"
    out = subprocess.run(
        [sys.executable, "-OO", "-c", script], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == export_sdl()


def test_the_image_compiles_the_bytecode_its_server_runs() -> None:
    """-OO reads ``.opt-2.pyc`` files, which pip never writes: without the image's compile step
    every start would compile every library from source (slower, and no memory saved)."""
    dockerfile = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text(encoding="utf-8")
    serve = [line for line in dockerfile.splitlines() if line.startswith("CMD ")][-1]
    assert '"-OO"' in serve
    assert '"serve"' in serve
    assert "python -OO -m compileall" in dockerfile


def test_a_logged_traceback_quotes_its_source_without_keeping_the_file(tmp_path: Path) -> None:
    """linecache keeps every file a traceback quotes for good: the log formatter quotes the
    lines and lets the files go (a database outage's tracebacks held ~3.7 MiB in a soak)."""
    import linecache
    import logging

    from gateway.logs import JsonFormatter

    source = tmp_path / "deep_module.py"
    source.write_text("def fail():\n    raise ValueError('the marker line')\n", encoding="utf-8")
    namespace: dict[str, object] = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    try:
        namespace["fail"]()  # type: ignore[operator]
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "raise ValueError('the marker line')" in line
    assert str(source) not in linecache.cache


def test_the_embedded_default_loads_alembic_only_to_migrate(tmp_path: Path) -> None:
    """The embedded default migrates its SQLite file at every start; a start over a file at
    the head reads its revision and never imports alembic (with mako and pygments, ~9 MiB
    for the life of the process). A new file is migrated, so alembic comes in then. The
    sandbox's emulated WeChat draws mini-program codes with Pillow, imported by the first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_SANDBOX"] = "1"
    names = {"alembic", "mako", "pygments", "PIL"}
    run = functools.partial(subprocess.run, env=env, cwd=tmp_path, capture_output=True, text=True)
    first = run([sys.executable, "-c", _PROBE.format(names=names)])
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.strip().splitlines()[-1]) == ["alembic", "mako", "pygments"]
    again = run([sys.executable, "-c", _PROBE.format(names=names)])
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == "[]"
