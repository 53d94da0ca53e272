"""PostgreSQL going away under a running gateway (a restart, a failover): requests fail cleanly
with a retryable UNAVAILABLE, /readyz says 503, and the gateway recovers by itself.

The "restart" is a TCP proxy between the gateway and PostgreSQL that the test cuts and
restores: real connections really break, without stopping the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from gateway import i18n
from gateway.api.schema import MASKED
from gateway.store.db import Database, LostRace, create_engine
from gateway.store.driver import SyncDriver
from tests.support.harness import PG_URL, Harness, MakeConfig, running, skip_or_fail
from tests.support.proxy import NOT_ACCEPTING, Proxy

VIEWER = "{ viewer { id } }"
REFRESH = """mutation($t: String!) {
  refreshToken(refreshToken: $t, client: {platform: "ios"}) { __typename }
}"""


@pytest.fixture
async def proxied(
    make_config: MakeConfig, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Harness, Proxy]]:
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    url = make_url(request.getfixturevalue("pg_migrated"))
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    config = make_config(url.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    async with running(config) as gw:
        yield gw, proxy
    with contextlib.suppress(Exception):
        await proxy.cut()


async def test_database_restart_fails_cleanly_and_recovers(
    proxied: tuple[Harness, Proxy],
) -> None:
    gw, proxy = proxied
    login = await gw.login("shop-mp", "alice")
    token = login["accessToken"]
    # several pooled connections, all of which the "restart" will break
    warm = await asyncio.gather(*(gw.gql(VIEWER, token=token) for _ in range(8)))
    assert all(b["data"]["viewer"]["id"] for b in warm)

    await proxy.cut()
    # a refresh first: a one-statement write on a pooled connection that is now broken
    refresh = await gw.gql(REFRESH, {"t": login["refreshToken"]})
    assert refresh["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}
    assert "postgres" not in str(refresh).lower()
    body = await gw.gql(VIEWER, token=token)
    assert body["data"] == {"viewer": None}
    assert body["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}
    assert "postgres" not in str(body).lower()
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 503

    await proxy.start()  # same port: PostgreSQL is back
    assert (await gw.client.get("/readyz")).status_code == 200
    after = await asyncio.gather(*(gw.gql(VIEWER, token=token) for _ in range(8)))
    assert [b["data"]["viewer"]["id"] for b in after] == [login["account"]["id"]] * 8
    again = await gw.login("shop-mp", "alice")
    assert again["account"]["id"] == login["account"]["id"]
    # the failed refresh wrote nothing: its token is still the session's live one
    refreshed = await gw.gql(REFRESH, {"t": login["refreshToken"]})
    assert refreshed["data"]["refreshToken"]["__typename"] == "RefreshSuccess"


async def test_a_one_statement_write_that_meets_a_concurrent_writer_says_so(
    request: pytest.FixtureRequest,
) -> None:
    """``write_once`` (the one-statement logins and refreshes) turns a unique violation or a
    deadlock into ``LostRace``, on which the caller takes its transactional path; any other
    failure stays what it is."""
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    db = Database(create_engine(request.getfixturevalue("pg_migrated")))
    taken = {"id": uuid.uuid4()}
    insert = text(
        "INSERT INTO accounts (id, status, created_at) VALUES (:id, 'active', now()) RETURNING id"
    )
    deadlock = text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$")
    try:
        await db.write_once(insert, taken)
        with pytest.raises(LostRace):
            await db.write_once(insert, taken)
        with pytest.raises(LostRace):
            await db.write_once(deadlock, {})
        with pytest.raises(DBAPIError) as other:
            await db.write_once(text("SELECT 1 / 0"), {})
        assert not isinstance(other.value, LostRace)
    finally:
        await db.dispose()


async def test_a_unit_of_work_on_a_worker_thread_commits_rolls_back_or_loses_a_race(
    tmp_path: Path,
) -> None:
    """SQLite's ``write_in_thread`` (its one-hand-off logins): what the work answers commits,
    ``None`` rolls everything back, and a unique violation is ``LostRace``."""
    db = Database(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"))
    # built once, as the gateway's statements are (each statement's plan is remembered)
    CREATE = text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")
    INSERT = text("INSERT INTO t (id) VALUES (:id)")
    COUNT = text("SELECT count(*) FROM t")

    def insert(key: int, keep: bool) -> Callable[[SyncDriver], str | None]:
        def work(conn: SyncDriver) -> str | None:
            conn.execute(CREATE)
            conn.execute(INSERT, {"id": key})
            return "kept" if keep else None

        return work

    def count(conn: SyncDriver) -> int:
        row = conn.execute(COUNT).first()
        assert row is not None
        return int(row[0])

    try:
        assert await db.write_in_thread(insert(1, keep=True)) == "kept"
        assert await db.write_in_thread(insert(2, keep=False)) is None
        with pytest.raises(LostRace):
            await db.write_in_thread(insert(1, keep=True))
        assert await db.write_in_thread(count) == 1
    finally:
        await db.dispose()


def test_a_sqlite_gateway_never_loads_the_postgresql_driver(tmp_path: Path) -> None:
    """The driver path imports asyncpg only when it runs on PostgreSQL: the embedded default's
    process is ~1.6 MiB smaller without it (the bench's peak-RSS row is measured on both)."""
    script = (
        "import sys, gateway.cli, gateway.app; gateway.app.create_app(); "
        "print('asyncpg' in sys.modules)"
    )
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path)}
    env.pop("GATEWAY_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False", done.stderr


REFUSED_OPERATIONS = {
    "viewer": ("{ viewer { id identities { kind } } }", {}),
    "checkSession": ("{ checkSession { valid } }", {}),
    "node": ("query($i: ID!) { node(id: $i) { id } }", {"i": "QWNjb3VudDox"}),
    "loginByCode": (
        """mutation($c: String!) { loginByCode(input: {app: "shop-mp", code: $c,
        client: {platform: "ios"}}) { __typename } }""",
        {"c": "a-code-never-seen"},
    ),
    "loginWithPassword": (
        """mutation { loginWithPassword(input: {username: "carol", password: "correct horse 9",
        app: "shop-mp", client: {platform: "ios"}}) { __typename } }""",
        {},
    ),
    "registerWithPassword": (
        """mutation { registerWithPassword(input: {username: "dave", password: "correct horse 9",
        app: "shop-mp", client: {platform: "ios"}}) { __typename } }""",
        {},
    ),
    "refreshToken": (REFRESH, {"t": "REFRESH"}),
    "logout": ("mutation { logout { __typename } }", {}),
    "unlinkIdentity": ('mutation { unlinkIdentity(id: "SWRlbnRpdHk6MQ==") { __typename } }', {}),
    "partner": ("{ partner { __typename } }", {}),
}


@pytest.mark.parametrize(
    "refusal",
    [NOT_ACCEPTING, ("57P01", "terminating connection due to administrator command"),
     ("53300", "sorry, too many clients already"), ("08P01", "invalid startup packet"), None],
    ids=["57P03", "57P01", "53300", "08P01", "nothing-listens"],
)  # fmt: skip
async def test_a_database_refusing_connections_is_unavailable_everywhere(
    proxied: tuple[Harness, Proxy],
    caplog: pytest.LogCaptureFixture,
    refusal: tuple[str, str] | None,
) -> None:
    """PostgreSQL refusing new sessions (starting, shutting down, recovering, full): every
    request that needs it answers the retryable ``UNAVAILABLE`` (503 ``temporarily_unavailable``
    at ``/oauth/token``), none a masked crash, and nothing is logged as an error."""
    gw, proxy = proxied
    login = await gw.login("shop-mp", "alice")
    token = login["accessToken"]
    if refusal is None:
        await proxy.cut()  # the port refuses every connection
    else:
        await proxy.refuse(*refusal)
    with caplog.at_level(logging.WARNING):
        for name, (query, variables) in REFUSED_OPERATIONS.items():
            variables = {k: login["refreshToken"] if v == "REFRESH" else v
                         for k, v in variables.items()}  # fmt: skip
            answer = await gw.client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"authorization": f"Bearer {token}"},
            )
            assert answer.status_code in (200, 503), (name, answer.text)
            shown = json.dumps(answer.json(), ensure_ascii=False)
            for locale in i18n.LOCALES:
                assert i18n.gettext(locale, "errors", MASKED) not in shown, (name, shown)
            codes = {e.get("extensions", {}).get("code") for e in answer.json()["errors"]}
            assert codes == {"UNAVAILABLE"}, (name, answer.text)
        oauth = await gw.client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "crm", "client_secret": "x"},
        )
        assert (oauth.status_code, oauth.json()["error"]) == (503, "temporarily_unavailable")
        assert (await gw.client.get("/readyz")).status_code == 503
    # strawberry's own log of every GraphQL error is switched off by gateway.logs.configure
    errors = [
        r
        for r in caplog.records
        if (r.levelno >= logging.ERROR or r.exc_info) and r.name != "strawberry.execution"
    ]
    assert errors == [], [r.getMessage() for r in errors]

    if refusal is not None:
        await proxy.cut()
    await proxy.start()  # PostgreSQL accepts again: so does the gateway
    assert (await gw.client.get("/readyz")).status_code == 200
    assert await gw.viewer_id(token) == login["account"]["id"]


class _AdaptedError(Exception):
    """Stands in for SQLAlchemy's adaptation of a driver error (its SQLSTATE, its cause)."""

    def __init__(self, sqlstate: str | None = None) -> None:
        super().__init__("adapted")
        self.sqlstate = sqlstate


def _raised_from(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def _driver_errors() -> dict[str, tuple[BaseException, bool]]:
    import asyncpg

    internal = asyncpg.exceptions.InternalClientError("unexpected protocol state")
    return {
        "asyncpg InternalClientError": (internal, True),
        "its SQLAlchemy wrapping": (
            DBAPIError("SELECT 1", None, _raised_from(_AdaptedError(), internal)),
            True,
        ),
        "57P03 at connect": (DBAPIError(None, None, _AdaptedError("57P03")), True),
        "57P03 unwrapped from a pool checkout": (_AdaptedError("57P03"), True),
        "08006 connection failure": (DBAPIError(None, None, _AdaptedError("08006")), True),
        "a NUL in text (22021)": (DBAPIError("SELECT 1", None, _AdaptedError("22021")), False),
        "a unique violation": (DBAPIError("INSERT", None, _AdaptedError("23505")), False),
        "division by zero": (DBAPIError("SELECT 1/0", None, _AdaptedError("22012")), False),
        "a bug": (ValueError("bug"), False),
    }


def test_which_database_errors_are_unavailable() -> None:
    """Every way a database that cannot serve now shows up is ``UNAVAILABLE``; a statement's
    own fault never is (it stays a masked, logged error)."""
    from gateway.store.db import is_unavailable

    verdicts = {name: is_unavailable(error) for name, (error, _) in _driver_errors().items()}
    assert verdicts == {name: expected for name, (_, expected) in _driver_errors().items()}
