"""Login sessions and refresh tokens in the database: with its one-statement half
(``sessions.at_once``, PostgreSQL's fast path), the only code of ``sessions`` that builds and
runs SQL; the rest of the package calls its functions and gets typed records back
(``sessions.records``, ``SessionView``), never rows.

Statements are built once (at import, or once per shape): building one costs more than running
it. Rows are read by name: sessions' own columns by their labels, the account's part by
``accounts`` itself (``AccountGraph.read_account``, a login part's ``read``), so nothing here
knows the account's columns or their order. A unit of work passed in is never committed here.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.accounts.model import AccountView
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo
from gateway.sessions.model import SessionView
from gateway.sessions.records import Facts, Held, LiveToken
from gateway.store.broadcast import account_key, changed, session_key
from gateway.store.db import Database, execute_core
from gateway.store.driver import SyncDriver
from gateway.store.models import LoginSession, RefreshToken

SESSIONS: Any = LoginSession.__table__  # type: ignore[attr-defined]
TOKENS: Any = RefreshToken.__table__  # type: ignore[attr-defined]

# the token check: a live session by id, with its account
_LIVE_TOKEN = AccountGraph.join_account(
    (SESSIONS.c.app_key, SESSIONS.c.expires_at, SESSIONS.c.created_at),
    SESSIONS.c.account_id,
).where(
    SESSIONS.c.id == bindparam("session_id"),
    SESSIONS.c.revoked_at.is_(None),
    SESSIONS.c.expires_at > bindparam("now"),
)
# a refresh: the live session of a refresh token (locked), the token's id, the account
LIVE_SESSION = (
    AccountGraph.join_account(
        (
            TOKENS.c.id.label("token_id"),
            SESSIONS.c.id.label("session_id"),
            SESSIONS.c.app_key,
            SESSIONS.c.expires_at,
        ),
        SESSIONS.c.account_id,
    )
    .join(TOKENS, TOKENS.c.session_id == SESSIONS.c.id)
    .where(
        TOKENS.c.token_hash == bindparam("digest"),
        SESSIONS.c.revoked_at.is_(None),
        SESSIONS.c.expires_at > bindparam("now"),
    )
    .with_for_update(of=SESSIONS)
)
# a browser's session (``sessions.browser``): the live session of a cookie's digest, with its
# account (the digest is an HMAC, never a refresh token's SHA-256: see that module)
_BROWSER_SESSION = (
    AccountGraph.join_account(
        (SESSIONS.c.id.label("session_id"), SESSIONS.c.created_at), SESSIONS.c.account_id
    )
    .join(TOKENS, TOKENS.c.session_id == SESSIONS.c.id)
    .where(
        TOKENS.c.token_hash == bindparam("digest"),
        SESSIONS.c.revoked_at.is_(None),
        SESSIONS.c.expires_at > bindparam("now"),
    )
)
# Core statements on the tables, no ORM unit of work (an ORM-enabled UPDATE also evaluates its
# WHERE against the identity map)
_INSERT_SESSION = insert(SESSIONS)
_INSERT_TOKEN = insert(TOKENS)
# spend a refresh token, once: no row changed means it was spent before
_SPEND_TOKEN = (
    update(TOKENS)
    .where(TOKENS.c.id == bindparam("token_id"), TOKENS.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_TOKEN_USED_AT = select(TOKENS.c.used_at).where(TOKENS.c.id == bindparam("token_id"))
_TOKEN_BY_DIGEST = select(TOKENS.c.id).where(TOKENS.c.token_hash == bindparam("digest"))
# one session row; the columns to set come with the parameters (``sid`` names the row)
TOUCH_SESSION = update(SESSIONS).where(SESSIONS.c.id == bindparam("sid"))
# a refresh's touch: the last use only, nothing the token cache holds (no broadcast needed)
_MARK_USED = TOUCH_SESSION.values(last_used_at=bindparam("now"))
CLIENT_FACTS = ("platform", "channel", "device_param", "ip", "user_agent")


@functools.cache
def _keys(statement: Any) -> tuple[str, ...]:
    """The names of its columns. One name twice (one of sessions' and one of the account's
    part) would read as one column: refused, at the statement's first use."""
    keys = tuple(column.key for column in statement.selected_columns)
    if len(set(keys)) < len(keys):
        raise ValueError(f"a column name is selected twice: {keys}")
    return keys


def named_row(statement: Any, row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``statement`` (a driver's tuple, or SQLAlchemy's) by its columns' names."""
    return dict(zip(_keys(statement), row, strict=True))


def held_from(row: Mapping[str, Any]) -> Held:
    account = AccountGraph.read_account(row)
    return Held(row["token_id"], row["session_id"], row["app_key"], row["expires_at"], account)


def _session_row(facts: Facts, client: ClientInfo, now: datetime) -> dict[str, Any]:
    row = {"id": facts.id, "account_id": facts.account_id, "app_key": facts.app_key}
    row |= {name: getattr(client, name) for name in CLIENT_FACTS}
    return row | {"created_at": now, "last_used_at": now, "expires_at": facts.expires_at}


def _token_row(facts: Facts, digest: str, now: datetime) -> dict[str, Any]:
    """A refresh token's row: only its digest is stored."""
    row = {"id": uuid.uuid4(), "session_id": facts.id, "token_hash": digest}
    return row | {"created_at": now, "expires_at": facts.expires_at}


# -- in the caller's unit of work ---------------------------------------------------------
async def open_session(
    s: AsyncSession, facts: Facts, client: ClientInfo, digest: str, now: datetime
) -> None:
    """A session's row and its first refresh token's."""
    await execute_core(s, _INSERT_SESSION, _session_row(facts, client, now))
    await execute_core(s, _INSERT_TOKEN, _token_row(facts, digest, now))


async def add_token(s: AsyncSession, facts: Facts, digest: str, now: datetime) -> None:
    await execute_core(s, _INSERT_TOKEN, _token_row(facts, digest, now))


async def held_session(s: AsyncSession, digest: str, now: datetime) -> Held | None:
    """The live session a refresh token belongs to, locked (PostgreSQL: ``FOR UPDATE OF`` the
    session row; SQLite's writer lock already serialises), with its account, in one read."""
    row = (await execute_core(s, LIVE_SESSION, {"digest": digest, "now": now})).first()
    return held_from(named_row(LIVE_SESSION, row)) if row is not None else None


async def token_written(s: AsyncSession, digest: str) -> bool:
    """Whether a refresh token of ``digest`` exists (a grace reuse's successor, say)."""
    found = await execute_core(s, _TOKEN_BY_DIGEST, {"digest": digest})
    return found.first() is not None


async def spend(s: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Spend an unspent token; False when it was spent before."""
    spent = await execute_core(s, _SPEND_TOKEN, {"token_id": token_id, "now": now})
    return bool(spent.rowcount == 1)


async def used_at(s: AsyncSession, token_id: uuid.UUID) -> datetime | None:
    result = await execute_core(s, _TOKEN_USED_AT, {"token_id": token_id})
    value: datetime | None = result.scalar_one_or_none()
    return value


async def touch(s: AsyncSession, session_id: uuid.UUID, **values: Any) -> None:
    """Update one session row; a change that revokes it or moves it to another account is
    broadcast (the token cache of every replica drops it when this commits)."""
    await execute_core(s, TOUCH_SESSION, {"sid": session_id, **values})
    if values.keys() & {"revoked_at", "account_id"}:
        changed(s, [session_key(session_id)])


async def adopt(s: AsyncSession, absorbed: list[uuid.UUID], survivor: uuid.UUID) -> None:
    """A merge: the absorbed accounts' sessions now act for the survivor."""
    changed(s, map(account_key, absorbed))
    await s.execute(
        update(LoginSession)
        .where(col(LoginSession.account_id).in_(absorbed))
        .values(account_id=survivor)
    )


async def _revoke(s: AsyncSession, keys: Iterable[str], now: datetime, *where: Any) -> int:
    """Revoke the live sessions ``where`` says; ``keys`` (``broadcast``) name them for every
    replica's token cache."""
    changed(s, keys)
    live = col(LoginSession.revoked_at).is_(None)
    result = await s.execute(update(LoginSession).where(live, *where).values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def revoke(
    s: AsyncSession, session_id: uuid.UUID, now: datetime, account_id: uuid.UUID | None = None
) -> int:
    """One live session (of ``account_id`` only, when given)."""
    where = [col(LoginSession.id) == session_id]
    if account_id is not None:
        where.append(col(LoginSession.account_id) == account_id)
    return await _revoke(s, [session_key(session_id)], now, *where)


async def revoke_others(
    s: AsyncSession, account_id: uuid.UUID, keep: uuid.UUID, now: datetime
) -> int:
    """Every live session of the account but ``keep``."""
    mine = col(LoginSession.account_id) == account_id
    return await _revoke(s, [account_key(account_id)], now, mine, col(LoginSession.id) != keep)


async def revoke_accounts(s: AsyncSession, account_ids: list[uuid.UUID], now: datetime) -> int:
    """Every live session of these accounts."""
    theirs = col(LoginSession.account_id).in_(account_ids)
    return await _revoke(s, map(account_key, account_ids), now, theirs)


async def erase(s: AsyncSession, account_ids: list[uuid.UUID]) -> None:
    """The accounts' sessions and refresh tokens, with their client facts, are gone. The
    sessions are locked first: a refresh in flight commits its new token before they go."""
    changed(s, map(account_key, account_ids))
    of_accounts = col(LoginSession.account_id).in_(account_ids)
    locked = await s.execute(select(col(LoginSession.id)).where(of_accounts).with_for_update())
    ids = locked.scalars().all()
    await s.execute(delete(RefreshToken).where(col(RefreshToken.session_id).in_(ids)))
    await s.execute(delete(LoginSession).where(of_accounts))


_SESSIONS_OF = select(*(SESSIONS.c[f.name] for f in dataclasses.fields(SessionView)))


# -- reads standing alone -----------------------------------------------------------------
async def live_token(db: Database, session_id: uuid.UUID, now: datetime) -> LiveToken | None:
    """A live session by id, with its account, in one indexed read."""
    rows = await db.read(_LIVE_TOKEN, {"session_id": session_id, "now": now})
    if not rows:
        return None
    row = named_row(_LIVE_TOKEN, rows[0])
    account = AccountGraph.read_account(row)
    return LiveToken(row["app_key"], row["expires_at"], row["created_at"], account)


async def browser_session(
    db: Database, digest: str, now: datetime
) -> tuple[uuid.UUID, datetime, AccountView] | None:
    """The live session whose cookie has ``digest``: its id, when it began, its account."""
    rows = await db.read(_BROWSER_SESSION, {"digest": digest, "now": now})
    if not rows:
        return None
    row = named_row(_BROWSER_SESSION, rows[0])
    return row["session_id"], row["created_at"], AccountGraph.read_account(row)


async def sessions_of(
    db: Database, account_id: uuid.UUID, *, live_after: datetime | None, limit: int
) -> list[SessionView]:
    """The account's sessions, last used first (only those live at ``live_after``, if given)."""
    query = _SESSIONS_OF.where(SESSIONS.c.account_id == account_id)
    if live_after is not None:
        query = query.where(SESSIONS.c.revoked_at.is_(None), SESSIONS.c.expires_at > live_after)
    rows = await db.read(query.order_by(SESSIONS.c.last_used_at.desc()).limit(limit))
    return [SessionView(**named_row(_SESSIONS_OF, row)) for row in rows]


# -- one step, SQLite: a unit of work on the writer thread (``Database.write_in_thread``) ----
def open_session_on(
    conn: SyncDriver, facts: Facts, client: ClientInfo, digest: str, now: datetime
) -> None:
    """``open_session`` on the writer thread's connection."""
    conn.execute(_INSERT_SESSION, _session_row(facts, client, now))
    conn.execute(_INSERT_TOKEN, _token_row(facts, digest, now))


def held_session_on(conn: SyncDriver, digest: str, now: datetime) -> Held | None:
    """``held_session`` on the writer thread's connection (its write lock serialises)."""
    row = conn.execute(LIVE_SESSION, {"digest": digest, "now": now}).first()
    return held_from(named_row(LIVE_SESSION, row)) if row is not None else None


def spend_on(conn: SyncDriver, token_id: uuid.UUID, now: datetime) -> bool:
    return conn.execute(_SPEND_TOKEN, {"token_id": token_id, "now": now}).rowcount == 1


def renew_on(conn: SyncDriver, facts: Facts, digest: str, now: datetime) -> None:
    """A refresh's rows once its token is spent: the session's last use, the new token."""
    conn.execute(_MARK_USED, {"sid": facts.id, "now": now})
    conn.execute(_INSERT_TOKEN, _token_row(facts, digest, now))
