"""The statements the hot paths run, built once: constructing a SQLAlchemy statement per
request costs more than running it. Values come as bound parameters."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import JSON, bindparam, case, exists, insert, select, update
from sqlmodel import col

from gateway.accounts.model import AccountStatus
from gateway.accounts.service import AccountGraph
from gateway.audit import insert_event_when
from gateway.store.models import LoginSession, RefreshToken

# the token check: a live session by id, with its account
LIVE_TOKEN = AccountGraph.join_account(
    (col(LoginSession.app_key), col(LoginSession.expires_at), col(LoginSession.created_at)),
    col(LoginSession.account_id),
).where(
    col(LoginSession.id) == bindparam("session_id"),
    col(LoginSession.revoked_at).is_(None),
    col(LoginSession.expires_at) > bindparam("now"),
)
# a refresh: the live session of a refresh token (locked), the token's id, the account
LIVE_SESSION = (
    AccountGraph.join_account(
        (
            col(RefreshToken.id).label("token_id"),
            col(LoginSession.id).label("session_id"),
            col(LoginSession.app_key).label("app_key"),
            col(LoginSession.expires_at).label("expires_at"),
        ),
        col(LoginSession.account_id),
    )
    .join(RefreshToken, col(RefreshToken.session_id) == col(LoginSession.id))
    .where(
        col(RefreshToken.token_hash) == bindparam("digest"),
        col(LoginSession.revoked_at).is_(None),
        col(LoginSession.expires_at) > bindparam("now"),
    )
    .with_for_update(of=LoginSession)
)

# the rows of a login and a refresh, as Core statements on the tables: no ORM unit of work
# (an ORM-enabled UPDATE also evaluates its WHERE against the identity map)
_SESSIONS: Any = LoginSession.__table__  # type: ignore[attr-defined]
_TOKENS: Any = RefreshToken.__table__  # type: ignore[attr-defined]
INSERT_SESSION = insert(_SESSIONS)
INSERT_REFRESH_TOKEN = insert(_TOKENS)
# spend a refresh token, once: no row changed means it was spent before
SPEND_REFRESH_TOKEN = (
    update(_TOKENS)
    .where(_TOKENS.c.id == bindparam("token_id"), _TOKENS.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
REFRESH_TOKEN_USED_AT = select(_TOKENS.c.used_at).where(_TOKENS.c.id == bindparam("token_id"))
# one session row; the columns to set come with the parameters (``sid`` names the row)
TOUCH_SESSION = update(_SESSIONS).where(_SESSIONS.c.id == bindparam("sid"))
# a refresh's touch: the last use only, nothing the token cache holds (no broadcast needed)
MARK_USED = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"))
    .values(last_used_at=bindparam("now"))
)


def _new_token(session_id: Any, expires_at: Any, name: str) -> Any:
    """A CTE inserting the refresh token of a session another CTE of the statement wrote or
    touched (its id and end are that CTE's columns); bound: ``token_id``, ``token_digest``,
    ``now``."""
    columns = _TOKENS.c
    row = select(
        bindparam("token_id", type_=columns.id.type),
        session_id,
        bindparam("token_digest", type_=columns.token_hash.type),
        bindparam("now", type_=columns.created_at.type),
        expires_at,
    )
    names = ["id", "session_id", "token_hash", "created_at", "expires_at"]
    return insert(_TOKENS).from_select(names, row).returning(columns.id).cte(name)


# A whole refresh as one statement (PostgreSQL: data-modifying CTEs, autocommitted): lock and
# read the token's live session with its account, spend the token if it is unspent and the
# account not merged, touch the session, insert the new token and the audit event. One round
# trip instead of seven (BEGIN, the five statements, COMMIT). ``rotated`` is false when nothing
# was written (a spent token, a merged account): the transactional path then decides.
_HELD = LIVE_SESSION.cte("held")
_SPENT = (
    update(_TOKENS)
    .where(
        _TOKENS.c.id.in_(select(_HELD.c.token_id).where(_HELD.c.status != AccountStatus.MERGED)),
        _TOKENS.c.used_at.is_(None),
    )
    .values(used_at=bindparam("now"))
    .returning(_TOKENS.c.session_id)
    .cte("spent")
)
_TOUCHED = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id.in_(select(_SPENT.c.session_id)))
    .values(last_used_at=bindparam("now"))
    .returning(_SESSIONS.c.id, _SESSIONS.c.expires_at)
    .cte("touched")
)
_FRESH = _new_token(_TOUCHED.c.id, _TOUCHED.c.expires_at, "fresh")
_ROTATED = exists(select(_FRESH.c.id))
_AUDITED = insert_event_when(
    {"account_id": _HELD.c.id, "session_id": _HELD.c.session_id, "app_key": _HELD.c.app_key},
    _ROTATED,
).cte("audited")
ROTATE = select(*_HELD.c, _ROTATED.label("rotated")).add_cte(_AUDITED)


# A login's session and refresh-token rows for the account of ``owner`` (a CTE with an ``id``
# column: the account graph's ``login_at_once``), as CTEs of one PostgreSQL statement; the
# values as ``sign_in.OneStepSignIn`` binds them.
SESSION_CLIENT_FACTS = ("platform", "channel", "device_param", "ip", "user_agent")


_STAMPS = ("created_at", "last_used_at", "expires_at")


@functools.cache
def opening(owner: Any) -> tuple[Any, Any]:
    def bound(name: str, column: str, table: Any = _SESSIONS) -> Any:
        return bindparam(name, type_=table.c[column].type)

    session = (
        insert(_SESSIONS)
        .from_select(
            ["id", "account_id", "app_key", *SESSION_CLIENT_FACTS, *_STAMPS],
            select(
                bound("session_id", "id"),
                owner.c.id,
                bound("app_key", "app_key"),
                *(bound("session_" + c, c) for c in SESSION_CLIENT_FACTS),
                bound("now", "created_at"),
                bound("now", "last_used_at"),
                bound("session_expires_at", "expires_at"),
            ),
        )
        .returning(_SESSIONS.c.id, _SESSIONS.c.account_id)
        .cte("new_session")
    )
    expires = bindparam("session_expires_at", type_=_TOKENS.c.expires_at.type)
    token = _new_token(session.c.id, expires, "new_token")
    return session, token


def _json(name: str) -> Any:
    return bindparam(name, type_=JSON)


@functools.cache
def login_at_once(key_count: int, with_session_key: bool) -> Any:
    """``Sessions.start_at_once``'s statement, built once per shape from its owners' parts:
    the account graph's (the account signed in to, created or found, and the session key),
    the session and refresh-token rows, and the audit event (``register`` for a new account,
    else ``login``), written only when the rows are."""
    account, writes = AccountGraph.login_at_once(key_count, with_session_key)
    session, token = opening(account)
    is_new = select(account.c.is_new).scalar_subquery()
    event = insert_event_when(
        {
            "account_id": session.c.account_id,
            "session_id": session.c.id,
            "app_key": bindparam("app_key"),
            "kind": case((is_new, "register"), else_="login"),
            "detail": case(
                (is_new, bindparam("event_new_detail", type_=JSON)),
                else_=bindparam("event_detail", type_=JSON),
            ),
        },
        exists(select(token.c.id)),
    ).cte("event")
    return select(*account.c).add_cte(*writes, session, token, event)
