"""The statements the hot paths run, built once: constructing a SQLAlchemy statement per
request costs more than running it. Values come as bound parameters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import col

from gateway.accounts.service import AccountGraph
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
            col(RefreshToken.id),
            col(LoginSession.id),
            col(LoginSession.app_key),
            col(LoginSession.expires_at),
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
