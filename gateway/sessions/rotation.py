"""A refresh in one step, when it needs no decision: on PostgreSQL one autocommitted
statement (``at_once.rotate_at_once``), on SQLite one write transaction handed whole to the
database's writer thread. An unspent token of a live session on an unmerged account is spent,
the session touched, the new token and the audit event written; a spent token (grace or
reuse) or a merged account is left to ``Sessions.refresh``'s transaction, which decides; so
is a statement that met a concurrent writer (``LostRace``: a deadlock, which rolled it back
whole), as a login's one statement is (``sessions.sign_in``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.accounts.model import AccountStatus, AccountView
from gateway.audit import ClientInfo, event_row, insert_on
from gateway.errors import InvalidRefreshToken
from gateway.sessions import at_once, repository
from gateway.sessions.issuing import Issuer
from gateway.sessions.model import IssuedTokens
from gateway.sessions.records import Facts
from gateway.sessions.tokens import hash_refresh_token
from gateway.store.db import Database, LostRace
from gateway.store.driver import SyncDriver

_Rotated = tuple[Facts, AccountView]


class OneStepRefresh:
    def __init__(self, db: Database, issuer: Issuer) -> None:
        self._db = db
        self._issuer = issuer

    async def rotate(self, token: str, client: ClientInfo, now: datetime) -> IssuedTokens | None:
        """The new pair; ``None`` when nothing was written because the token was spent, the
        account merged or a concurrent writer got in the way (``LostRace``).
        ``InvalidRefreshToken`` when no live session has the token."""
        refresh, digest = self._issuer.successor(token)
        presented = hash_refresh_token(token)
        event = event_row("refresh", client)
        run = self._in_thread if self._db.dialect == "sqlite" else self._in_statement
        try:
            rotated = await run(presented, digest, event, now)
        except LostRace:  # it wrote nothing: the transaction decides (and runs again)
            return None
        if rotated is None:
            return None
        facts, account = rotated
        return replace(self._issuer.pair(facts, now, refresh), account=account)

    async def _in_statement(
        self, presented: str, digest: str, event: dict[str, Any], now: datetime
    ) -> _Rotated | None:
        """PostgreSQL: one autocommitted statement of data-modifying CTEs."""
        found = await at_once.rotate_at_once(self._db, presented, digest, event, now)
        if found is None:
            raise InvalidRefreshToken()
        held, rotated = found
        return (held.facts, held.account) if rotated else None

    async def _in_thread(
        self, presented: str, digest: str, event: dict[str, Any], now: datetime
    ) -> _Rotated | None:
        """SQLite (no data-modifying CTEs): the same statements in one write transaction on the
        writer thread: one hand-off instead of aiosqlite's one per statement, while the write
        lock is held."""

        def work(conn: SyncDriver) -> _Rotated | None:
            held = repository.held_session_on(conn, presented, now)
            if held is None:
                raise InvalidRefreshToken()
            account = held.account
            if account.status == AccountStatus.MERGED:
                return None
            if not repository.spend_on(conn, held.token_id, now):
                return None
            facts = held.facts
            repository.renew_on(conn, facts, digest, now)
            row = {**event, "account_id": account.id, "session_id": facts.id}
            insert_on(conn, row | {"app_key": facts.app_key})
            return facts, account

        return await self._db.write_in_thread(work)
