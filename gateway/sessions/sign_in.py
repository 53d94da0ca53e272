"""A WeChat sign-in in one step, when it needs no decision: on PostgreSQL one autocommitted
statement (``statements.login_at_once``), on SQLite one write transaction handed whole to the
database's writer thread. The account graph decides whose account it is (``accounts.at_once``);
this adds the session, refresh-token and audit rows and issues the pair."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from gateway.accounts.model import AccountView, IdentityKey
from gateway.accounts.service import AccountGraph, SessionKey
from gateway.audit import ClientInfo, event_row, insert_on
from gateway.sessions.issuing import Facts, Issuer, session_row, token_row
from gateway.sessions.model import IssuedTokens
from gateway.sessions.statements import (
    INSERT_REFRESH_TOKEN,
    INSERT_SESSION,
    SESSION_CLIENT_FACTS,
    login_at_once,
)
from gateway.sessions.tokens import new_refresh_token
from gateway.store.db import Database, LostRace
from gateway.store.driver import SyncDriver
from gateway.store.models import utcnow

SignedIn = tuple[IssuedTokens, bool]
"""The pair, and whether the account is new."""


class _Opening(NamedTuple):
    """A sign-in about to be written: what the client sent and the session it opens, before
    the database says whose account it is."""

    keys: list[IdentityKey]
    wechat_key: SessionKey | None
    client: ClientInfo
    detail: dict[str, Any]
    session_id: uuid.UUID
    app_key: str
    expires_at: datetime
    refresh: str
    digest: str
    now: datetime

    def facts(self, account_id: uuid.UUID) -> Facts:
        return Facts(self.session_id, account_id, self.app_key, self.expires_at)


def _linked(detail: dict[str, Any], keys: list[IdentityKey]) -> dict[str, Any]:
    """A new account's login event says which identities it was created with."""
    return {**detail, "linked": [k.kind.value for k in keys]}


class OneStepSignIn:
    def __init__(self, db: Database, accounts: AccountGraph, issuer: Issuer) -> None:
        self._db = db
        self._accounts = accounts
        self._issuer = issuer

    async def start(
        self,
        keys: list[IdentityKey],
        wechat_key: SessionKey | None,
        app_key: str,
        client: ClientInfo,
        detail: dict[str, Any],
    ) -> SignedIn | None:
        """``None`` when nothing was written: the login needs a decision (see
        ``accounts.at_once``) or lost a race for a new key to a concurrent login."""
        now = utcnow()
        refresh, digest = new_refresh_token()
        expires = self._issuer.session_end(app_key, now)
        opening = _Opening(
            keys, wechat_key, client, detail, uuid.uuid4(), app_key, expires, refresh, digest, now
        )
        run = self._in_thread if self._db.dialect == "sqlite" else self._in_statement
        try:
            signed_in = await run(opening)
        except LostRace:
            return None
        if signed_in is None:
            return None
        account, is_new = signed_in
        issued = self._issuer.pair(opening.facts(account.id), now, refresh)
        return replace(issued, account=account), is_new

    async def _in_statement(self, opening: _Opening) -> tuple[AccountView, bool] | None:
        """PostgreSQL: one autocommitted statement of data-modifying CTEs."""
        keys, client, now = opening.keys, opening.client, opening.now
        params = self._accounts.at_once_params(keys, opening.wechat_key, now)
        params |= {
            "session_id": opening.session_id,
            "app_key": opening.app_key,
            "now": now,
            "session_expires_at": opening.expires_at,
            "token_id": uuid.uuid4(),
            "token_digest": opening.digest,
        }
        params |= {f"session_{name}": getattr(client, name) for name in SESSION_CLIENT_FACTS}
        event = event_row("login", client, **opening.detail)
        params |= {"event_" + name: value for name, value in event.items()}
        params["event_new_detail"] = _linked(event["detail"], keys)
        statement = login_at_once(len(keys), opening.wechat_key is not None)
        rows = await self._db.write_once(statement, params)
        if not rows:
            return None
        *account, is_new = rows[0]
        return AccountGraph.account_from_row(account), bool(is_new)

    async def _in_thread(self, opening: _Opening) -> tuple[AccountView, bool] | None:
        """SQLite (no data-modifying CTEs): the account graph's ``sign_in_on``, then the rows,
        in one write transaction on the writer thread: one hand-off instead of aiosqlite's
        one per statement, while the write lock is held."""
        keys, client = opening.keys, opening.client
        event = event_row("login", client, **opening.detail)

        def work(conn: SyncDriver) -> tuple[AccountView, bool] | None:
            signed_in = self._accounts.sign_in_on(
                conn, keys, opening.app_key, opening.wechat_key, opening.now
            )
            if signed_in is None:
                return None
            account, is_new = signed_in
            facts, now = opening.facts(account.id), opening.now
            conn.execute(INSERT_SESSION, session_row(facts, client, now))
            conn.execute(INSERT_REFRESH_TOKEN, token_row(facts, opening.digest, now))
            row = {**event, "account_id": account.id, "session_id": facts.id}
            row["app_key"] = facts.app_key
            if is_new:
                row |= {"kind": "register", "detail": _linked(event["detail"], keys)}
            insert_on(conn, row)
            return signed_in

        return await self._db.write_in_thread(work)
