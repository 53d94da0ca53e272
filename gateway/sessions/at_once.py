"""The repository's one-statement writes (PostgreSQL: data-modifying CTEs, autocommitted by
``Database.write_once``): a whole refresh, and a whole sign-in composed with the account
graph's part. The rest of sessions' SQL, and the statements these build on, are in
``sessions.repository``; this half is apart because it is the fast path's alone (SQLite has no
such CTEs) and ``tests/test_fast_paths_equal.py`` holds it to the reference.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, bindparam, case, exists, insert, select, update

from gateway.accounts.model import AccountView
from gateway.accounts.service import AccountGraph
from gateway.audit import insert_event_when
from gateway.sessions.records import Held, Opening
from gateway.sessions.repository import (
    CLIENT_FACTS,
    LIVE_SESSION,
    SESSIONS,
    TOKENS,
    held_from,
    named_row,
)
from gateway.store.db import Database


def _new_token(session_id: Any, expires_at: Any, name: str) -> Any:
    """A CTE inserting the refresh token of a session another CTE wrote or touched (its id and
    end are that CTE's columns); bound: ``token_id``, ``token_digest``, ``now``."""
    columns = TOKENS.c
    row = select(
        bindparam("token_id", type_=columns.id.type),
        session_id,
        bindparam("token_digest", type_=columns.token_hash.type),
        bindparam("now", type_=columns.created_at.type),
        expires_at,
    )
    names = ["id", "session_id", "token_hash", "created_at", "expires_at"]
    return insert(TOKENS).from_select(names, row).returning(columns.id).cte(name)


# A whole refresh: lock and read the token's live session with its account, spend the token
# if it is unspent and the account not merged, touch the session, insert the new token and
# the audit event. One round trip instead of seven (BEGIN, the five statements, COMMIT).
# ``rotated`` is false when nothing was written (a spent token, a merged account).
_HELD = LIVE_SESSION.cte("held")
_SPENT = (
    update(TOKENS)
    .where(
        TOKENS.c.id.in_(select(_HELD.c.token_id).where(~AccountGraph.merged_in(_HELD))),
        TOKENS.c.used_at.is_(None),
    )
    .values(used_at=bindparam("now"))
    .returning(TOKENS.c.session_id)
    .cte("spent")
)
_TOUCHED = (
    update(SESSIONS)
    .where(SESSIONS.c.id.in_(select(_SPENT.c.session_id)))
    .values(last_used_at=bindparam("now"))
    .returning(SESSIONS.c.id, SESSIONS.c.expires_at)
    .cte("touched")
)
_FRESH = _new_token(_TOUCHED.c.id, _TOUCHED.c.expires_at, "fresh")
_ROTATED = exists(select(_FRESH.c.id))
_AUDITED = insert_event_when(
    {
        "account_id": AccountGraph.account_id_in(_HELD),
        "session_id": _HELD.c.session_id,
        "app_key": _HELD.c.app_key,
    },
    _ROTATED,
).cte("audited")
_ROTATE = select(*_HELD.c, _ROTATED.label("rotated")).add_cte(_AUDITED)


async def rotate_at_once(
    db: Database, presented: str, digest: str, event: dict[str, Any], now: datetime
) -> tuple[Held, bool] | None:
    """The session held by the token presented and whether it rotated (to a new token of
    ``digest``, with ``event``, an ``audit.event_row``); ``None`` when no live session has
    the token."""
    params = {"digest": presented, "now": now, "token_id": uuid.uuid4(), "token_digest": digest}
    params |= {"event_" + name: value for name, value in event.items()}
    rows = await db.write_once(_ROTATE, params)
    if not rows:
        return None
    row = named_row(_ROTATE, rows[0])
    return held_from(row), bool(row["rotated"])


_STAMPS = ("created_at", "last_used_at", "expires_at")


@functools.cache
def _sign_in(key_count: int, with_session_key: bool) -> Any:
    """A one-step login, built once per shape from its owners' parts: the account graph's
    (the account signed in to, created or found, and the session key), the session and
    refresh-token rows, and the audit event (``register`` for a new account, else ``login``),
    written only when the rows are."""
    account = AccountGraph.login_at_once(key_count, with_session_key)

    def bound(name: str, column: str) -> Any:
        return bindparam(name, type_=SESSIONS.c[column].type)

    session = (
        insert(SESSIONS)
        .from_select(
            ["id", "account_id", "app_key", *CLIENT_FACTS, *_STAMPS],
            select(
                bound("session_id", "id"),
                account.account_id,
                bound("app_key", "app_key"),
                *(bound("session_" + c, c) for c in CLIENT_FACTS),
                bound("now", "created_at"),
                bound("now", "last_used_at"),
                bound("session_expires_at", "expires_at"),
            ),
        )
        .returning(SESSIONS.c.id, SESSIONS.c.account_id)
        .cte("new_session")
    )
    expires = bindparam("session_expires_at", type_=TOKENS.c.expires_at.type)
    token = _new_token(session.c.id, expires, "new_token")
    event = insert_event_when(
        {
            "account_id": session.c.account_id,
            "session_id": session.c.id,
            "app_key": bindparam("app_key"),
            "kind": case((account.is_new, "register"), else_="login"),
            "detail": case(
                (account.is_new, bindparam("event_new_detail", type_=JSON)),
                else_=bindparam("event_detail", type_=JSON),
            ),
        },
        exists(select(token.c.id)),
    ).cte("event")
    return account, select(*account.columns).add_cte(*account.writes, session, token, event)


async def sign_in_at_once(
    db: Database,
    key_count: int,
    with_session_key: bool,
    account_params: dict[str, Any],
    opening: Opening,
    event: dict[str, Any],
    new_detail: dict[str, Any],
) -> tuple[AccountView, bool] | None:
    """The account signed in to and whether it is new, the session of ``opening``, its refresh
    token and ``event`` (``new_detail`` for a new account) written; ``account_params`` from
    ``AccountGraph.at_once_params``. ``None`` when nothing was written: it needs a decision."""
    account, statement = _sign_in(key_count, with_session_key)
    params = account_params | {
        "session_id": opening.id,
        "app_key": opening.app_key,
        "now": opening.now,
        "session_expires_at": opening.expires_at,
        "token_id": uuid.uuid4(),
        "token_digest": opening.digest,
        "event_new_detail": new_detail,
    }
    params |= {"session_" + name: getattr(opening.client, name) for name in CLIENT_FACTS}
    params |= {"event_" + name: value for name, value in event.items()}
    rows = await db.write_once(statement, params)
    return account.read(named_row(statement, rows[0])) if rows else None
