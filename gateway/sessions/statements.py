"""The statements the hot paths run, built once: constructing a SQLAlchemy statement per
request costs more than running it. Values come as bound parameters."""

from __future__ import annotations

from sqlalchemy import bindparam
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
