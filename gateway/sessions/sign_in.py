"""A WeChat sign-in in one step, when it needs no decision: on PostgreSQL one autocommitted
statement (``at_once.sign_in_at_once``), on SQLite one write transaction handed whole to the
database's writer thread. The account graph decides whose account it is (``accounts.at_once``);
this adds the session, refresh-token and audit rows and issues the pair."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, NamedTuple

from gateway.accounts.model import AccountView, IdentityKey
from gateway.accounts.service import AccountGraph, SessionKey
from gateway.audit import ClientInfo, event_row, insert_on
from gateway.sessions import at_once, repository
from gateway.sessions.issuing import Issuer
from gateway.sessions.model import IssuedTokens
from gateway.sessions.records import Opening
from gateway.sessions.tokens import new_refresh_token
from gateway.store.db import Database, LostRace
from gateway.store.driver import SyncDriver
from gateway.store.models import utcnow

SignedIn = tuple[IssuedTokens, bool]
"""The pair, and whether the account is new."""


class _SignIn(NamedTuple):
    """A sign-in about to be written: what the client sent, and the session it opens."""

    keys: list[IdentityKey]
    wechat_key: SessionKey | None
    detail: dict[str, Any]
    session: Opening


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
        session = Opening(uuid.uuid4(), app_key, expires, client, digest, now)
        sign_in = _SignIn(keys, wechat_key, detail, session)
        run = self._in_thread if self._db.dialect == "sqlite" else self._in_statement
        try:
            signed_in = await run(sign_in)
        except LostRace:
            return None
        if signed_in is None:
            return None
        account, is_new = signed_in
        issued = self._issuer.pair(session.facts(account.id), now, refresh)
        return replace(issued, account=account), is_new

    async def _in_statement(self, sign_in: _SignIn) -> tuple[AccountView, bool] | None:
        """PostgreSQL: one autocommitted statement of data-modifying CTEs."""
        keys, session = sign_in.keys, sign_in.session
        params = self._accounts.at_once_params(
            keys, session.app_key, sign_in.wechat_key, session.now
        )
        event = event_row("login", session.client, **sign_in.detail)
        return await at_once.sign_in_at_once(
            self._db,
            len(keys),
            sign_in.wechat_key is not None,
            params,
            session,
            event,
            _linked(event["detail"], keys),
        )

    async def _in_thread(self, sign_in: _SignIn) -> tuple[AccountView, bool] | None:
        """SQLite (no data-modifying CTEs): the account graph's ``sign_in_on``, then the rows,
        in one write transaction on the writer thread: one hand-off instead of aiosqlite's
        one per statement, while the write lock is held."""
        keys, session = sign_in.keys, sign_in.session
        event = event_row("login", session.client, **sign_in.detail)

        def work(conn: SyncDriver) -> tuple[AccountView, bool] | None:
            signed_in = self._accounts.sign_in_on(
                conn, keys, session.app_key, sign_in.wechat_key, session.now
            )
            if signed_in is None:
                return None
            account, is_new = signed_in
            facts = session.facts(account.id)
            repository.open_session_on(conn, facts, session.client, session.digest, session.now)
            row = {**event, "account_id": account.id, "session_id": facts.id}
            row["app_key"] = facts.app_key
            if is_new:
                row |= {"kind": "register", "detail": _linked(event["detail"], keys)}
            insert_on(conn, row)
            return signed_in

        return await self._db.write_in_thread(work)
