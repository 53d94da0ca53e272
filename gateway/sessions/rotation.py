"""A refresh in one step, when it needs no decision: on PostgreSQL one autocommitted statement
(``statements.ROTATE``), on SQLite one write transaction handed whole to the database's writer
thread. An unspent token of a live session on an unmerged account is spent, the session
touched, the new token and the audit event written; a spent token (grace or reuse) or a merged
account is left to ``Sessions.refresh``'s transaction, which decides."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.accounts.model import AccountStatus, AccountView
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo, event_row, insert_on
from gateway.errors import InvalidRefreshToken
from gateway.sessions.issuing import Facts, Issuer, token_row
from gateway.sessions.model import IssuedTokens
from gateway.sessions.statements import (
    INSERT_REFRESH_TOKEN,
    LIVE_SESSION,
    MARK_USED,
    ROTATE,
    SPEND_REFRESH_TOKEN,
)
from gateway.sessions.tokens import hash_refresh_token, new_refresh_token
from gateway.store.db import Database
from gateway.store.driver import SyncDriver

_Rotated = tuple[Facts, AccountView]


class OneStepRefresh:
    def __init__(self, db: Database, issuer: Issuer) -> None:
        self._db = db
        self._issuer = issuer

    async def rotate(self, token: str, client: ClientInfo, now: datetime) -> IssuedTokens | None:
        """The new pair; ``None`` when nothing was written because the token was spent or
        the account merged. ``InvalidRefreshToken`` when no live session has the token."""
        refresh, digest = new_refresh_token()
        presented = hash_refresh_token(token)
        event = event_row("refresh", client)
        run = self._in_thread if self._db.dialect == "sqlite" else self._in_statement
        rotated = await run(presented, digest, event, now)
        if rotated is None:
            return None
        facts, account = rotated
        return replace(self._issuer.pair(facts, now, refresh), account=account)

    async def _in_statement(
        self, presented: str, digest: str, event: dict[str, Any], now: datetime
    ) -> _Rotated | None:
        """PostgreSQL: ``ROTATE``, one autocommitted statement of data-modifying CTEs."""
        params = {"digest": presented, "now": now, "token_id": uuid.uuid4(), "token_digest": digest}
        params |= {"event_" + name: value for name, value in event.items()}
        rows = await self._db.write_once(ROTATE, params)
        if not rows:
            raise InvalidRefreshToken()
        row = rows[0]
        if not row[-1]:
            return None
        account = AccountGraph.account_from_row(row[4:-1])
        return Facts(row[1], account.id, row[2], row[3]), account

    async def _in_thread(
        self, presented: str, digest: str, event: dict[str, Any], now: datetime
    ) -> _Rotated | None:
        """SQLite (no data-modifying CTEs): the same statements in one write transaction on the
        writer thread: one hand-off instead of aiosqlite's one per statement, while the write
        lock is held."""

        def work(conn: SyncDriver) -> _Rotated | None:
            row = conn.execute(LIVE_SESSION, {"digest": presented, "now": now}).first()
            if row is None:
                raise InvalidRefreshToken()
            account = AccountGraph.account_from_row(row[4:])
            if account.status == AccountStatus.MERGED:
                return None
            spent = conn.execute(SPEND_REFRESH_TOKEN, {"token_id": row[0], "now": now})
            if spent.rowcount != 1:
                return None
            facts = Facts(row[1], account.id, row[2], row[3])
            conn.execute(MARK_USED, {"sid": facts.id, "now": now})
            conn.execute(INSERT_REFRESH_TOKEN, token_row(facts, digest, now))
            insert_on(
                conn,
                {
                    **event,
                    "account_id": account.id,
                    "session_id": facts.id,
                    "app_key": facts.app_key,
                },
            )
            return facts, account

        return await self._db.write_in_thread(work)
