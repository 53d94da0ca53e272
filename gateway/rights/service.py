"""People's rights and the operators' tools, as one use case over the account graph, sessions
and the audit trail. No SQL here: erasure is ``AccountGraph.erase`` + ``Sessions.erase`` +
``audit.scrub`` in one unit of work, so an account is erased whole or not at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway import audit
from gateway.accounts.model import AccountView, IdentityKey
from gateway.accounts.service import AccountGraph
from gateway.audit import AuditQuery, AuditView, ClientInfo, record, record_by
from gateway.config import GatewayConfig
from gateway.errors import (
    N_,
    LastIdentity,
    NotFound,
    RateLimited,
    TemporarilyUnavailable,
    declares,
)
from gateway.rights import documents
from gateway.rights.reauthentication import Proof, Reauthentication
from gateway.sessions.model import Viewer
from gateway.sessions.service import Sessions
from gateway.store.db import Database, UnitOfWork
from gateway.store.models import utcnow
from gateway.throttle import WindowLimit

log = logging.getLogger(__name__)
OPERATOR = ClientInfo("operator")
# The export is built in memory: its size is bounded by keeping the newest of each list
# (the document says when it was cut; operators read the rest with ``gateway audit``).
EVENTS_IN_EXPORT = 500
SESSIONS_IN_EXPORT = 200


@dataclass(frozen=True)
class Deletion:
    requested_at: datetime
    effective_at: datetime

    @property
    def done(self) -> bool:
        return self.effective_at <= self.requested_at


@dataclass(frozen=True)
class Operator:
    """Who runs an operator command, and why (both land in the audit event)."""

    name: str
    reason: str | None = None
    client: ClientInfo = OPERATOR  # the console's browser (address, user agent); the CLI: none


@dataclass(frozen=True)
class _OnBehalf:
    """The person an operator acts for (no session of theirs, no app)."""

    account_id: uuid.UUID
    session_id: uuid.UUID | None = None
    app_key: str | None = None


class Rights:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        accounts: AccountGraph,
        sessions: Sessions,
        reauthentication: Reauthentication,
        exports: WindowLimit | None = None,
    ) -> None:
        self._config = config
        self._exports = exports  # one personalData per account per window (None: no limit)
        self._db = db
        self._accounts = accounts
        self._sessions = sessions
        self._reauthentication = reauthentication

    # -- the person ------------------------------------------------------------------------
    @declares(Reauthentication.confirm, NotFound)
    async def delete_account(self, viewer: Viewer, proof: Proof, client: ClientInfo) -> Deletion:
        """Erase the viewer's account, at once or after the cooling-off period (then marked,
        with every session revoked now; a later login cancels it). Re-authenticated by the
        rule that also guards adding a way in (``gateway.rights.reauthentication``)."""
        method = await self._reauthentication.confirm(viewer, proof)
        now = utcnow()
        due = now + timedelta(days=self._config.accounts.deletion_grace_days)

        async def carry_out(s: UnitOfWork) -> None:
            record_by(s, "deletion_requested", client, viewer, reauthenticated=method)
            if due <= now:
                await self._erase(s, viewer.account_id, by="self")
            else:
                await self._accounts.mark_for_deletion(s, viewer.account_id, now, due)
                await self._sessions.revoke_all(s, [viewer.account_id])

        await self._db.run_in_transaction(carry_out)  # logins of the person may race it
        return Deletion(now, due)

    async def _erase(self, s: UnitOfWork, account_id: uuid.UUID, *, by: str, **detail: Any) -> None:
        days = self._config.accounts.username_reservation_days
        reserve_until = utcnow() + timedelta(days=days) if days else None
        erased = await self._accounts.erase(s, account_id, reserve_until)
        await self._sessions.erase(s, erased)
        await audit.scrub(s, erased)
        followers = [str(a) for a in erased if a != account_id]
        record(s, "account_deleted", None, account_id=account_id, by=by, merged=followers, **detail)

    @declares(NotFound, RateLimited, TemporarilyUnavailable)
    async def own_personal_data(self, account_id: uuid.UUID) -> dict[str, Any]:
        """The person's own export (``personalData``): at most once per account per
        ``[accounts] personal_data_interval_seconds``, counted across replicas in Redis."""
        if self._exports is not None:
            await self._exports.spend(
                f"personal-data:{account_id}",
                N_("You asked for your data a moment ago; try again in %(seconds)s seconds."),
            )
        return await self.personal_data(account_id)

    async def personal_data(self, account_id: uuid.UUID) -> dict[str, Any]:
        """Everything held about the person (PIPL art. 45): their own account only; the newest
        ``SESSIONS_IN_EXPORT`` sessions and ``EVENTS_IN_EXPORT`` audit events."""
        (view,) = await self._accounts.accounts([account_id])
        if view is None or not view.live:
            raise NotFound("No live account with this id.")
        (identities,) = await self._accounts.identities([account_id])
        sessions = await self._sessions.history(account_id, SESSIONS_IN_EXPORT + 1)
        events = await self._events(account_id, EVENTS_IN_EXPORT + 1)
        cut = {"sessions": len(sessions) > SESSIONS_IN_EXPORT}
        cut["auditEvents"] = len(events) > EVENTS_IN_EXPORT
        return documents.personal_data(
            view,
            identities,
            sessions[:SESSIONS_IN_EXPORT],
            events[:EVENTS_IN_EXPORT],
            self._app,
            utcnow(),
        ) | {"truncated": cut}

    def _app(self, key: str | None) -> dict[str, str] | None:
        app = self._config.app(key) if key else None
        return {"key": app.key, "name": app.name} if app else None

    async def _events(self, account_id: uuid.UUID, limit: int) -> list[AuditView]:
        merged = [a.id for a in await self._accounts.merged_into(account_id)]
        return await audit.read(self._db, AuditQuery((account_id, *merged), limit=limit))

    # -- the schedule ----------------------------------------------------------------------
    async def carry_out_due(self) -> int:
        """Erase the accounts whose cooling-off period is over; how many."""

        async def erase_if_due(s: UnitOfWork, account_id: uuid.UUID) -> bool:
            if not await self._accounts.still_due(s, account_id, utcnow()):
                return False
            await self._erase(s, account_id, by="schedule")
            return True

        done = 0
        while True:
            due = await self._accounts.due_for_deletion(utcnow(), limit=100)
            before = done
            for account_id in due:
                erase = functools.partial(erase_if_due, account_id=account_id)
                if await self._db.run_in_transaction(erase):
                    done += 1
            if len(due) < 100 or done == before:
                return done

    # -- operators -------------------------------------------------------------------------
    async def find(
        self, key: IdentityKey | None, account_id: uuid.UUID | None
    ) -> list[AccountView]:
        """The account an identifier or id leads to (merged accounts lead to their survivor)."""
        if key is not None:
            (identity,) = await self._accounts.identities_by_key([key])
            account_id = identity.account_id if identity else None
        if account_id is None:
            return []
        (view,) = await self._accounts.accounts([account_id])
        return [view] if view else []

    @declares(NotFound)
    async def show(self, account_id: uuid.UUID, events: int = 20) -> dict[str, Any]:
        (view,) = await self._accounts.accounts([account_id])
        if view is None:
            raise NotFound("No account with this id.")
        (identities,) = await self._accounts.identities([account_id])
        return documents.operator_view(
            view,
            identities,
            await self._sessions.active(account_id),
            await self._events(account_id, events),
            await self._accounts.merged_into(account_id),
            self._app,
        )

    @declares(NotFound)
    async def set_disabled(self, account_id: uuid.UUID, disabled: bool, by: Operator) -> int:
        """Disable (every session revoked at once) or enable (login again; old sessions stay
        revoked). Returns how many sessions were revoked."""

        async def work(s: UnitOfWork) -> int:
            await self._accounts.set_disabled(s, account_id, disabled, by.reason)
            revoked = await self._sessions.revoke_all(s, [account_id]) if disabled else 0
            kind = "account_disabled" if disabled else "account_enabled"
            record(
                s, kind, by.client, account_id=account_id, operator=by.name, reason=by.reason,
                revoked=revoked,
            )  # fmt: skip
            return revoked

        return await self._db.run_in_transaction(work)

    @declares(NotFound)
    async def revoke_sessions(self, account_id: uuid.UUID, by: Operator) -> int:
        """Log the person out everywhere (the console's "revoke sessions"); how many."""

        async def work(s: UnitOfWork) -> int:
            revoked = await self._sessions.revoke_all(s, [account_id])
            record(
                s, "sessions_revoked", by.client, account_id=account_id, operator=by.name,
                reason=by.reason, revoked=revoked,
            )  # fmt: skip
            return revoked

        return await self._db.run_in_transaction(work)

    @declares(NotFound, LastIdentity)
    async def unlink_identity(
        self, account_id: uuid.UUID, identity_id: uuid.UUID, by: Operator
    ) -> None:
        """An operator removes a way in for the person (never the last one), by the path the
        person's own ``unlinkIdentity`` takes; the audit row names the operator and reason."""
        actor = _OnBehalf(account_id)
        await self._accounts.unlink(
            actor, identity_id, by.client, reauthenticated="operator", operator=by.name,
            reason=by.reason,
        )  # fmt: skip

    @declares(NotFound)
    async def request_deletion(self, account_id: uuid.UUID, by: Operator) -> Deletion:
        """An operator files the person's deletion request: the same cooling-off period (every
        session revoked now), or erasure at once when there is none."""
        (view,) = await self._accounts.accounts([account_id])
        if view is None or not view.live:
            raise NotFound("No live account with this id.")
        now = utcnow()
        due = now + timedelta(days=self._config.accounts.deletion_grace_days)

        async def work(s: UnitOfWork) -> None:
            record(
                s, "deletion_requested", by.client, account_id=account_id, operator=by.name,
                reason=by.reason,
            )  # fmt: skip
            if due <= now:
                await self._erase(s, account_id, by="operator", operator=by.name, reason=by.reason)
            else:
                await self._accounts.mark_for_deletion(s, account_id, now, due)
                await self._sessions.revoke_all(s, [account_id])

        await self._db.run_in_transaction(work)
        return Deletion(now, due)

    async def cancel_deletion(self, account_id: uuid.UUID, by: Operator) -> bool:
        """Cancel a pending deletion (the person asked to stay); False when none was pending."""

        async def work(s: UnitOfWork) -> bool:
            cancelled = await self._accounts.cancel_deletion(s, account_id)
            if cancelled:
                record(
                    s, "deletion_cancelled", by.client, account_id=account_id, operator=by.name,
                    reason=by.reason,
                )  # fmt: skip
            return cancelled

        return await self._db.run_in_transaction(work)

    @declares(NotFound)
    async def delete_now(self, account_id: uuid.UUID, by: Operator) -> None:
        """An operator's deletion: no cooling-off period."""
        await self._db.run_in_transaction(
            lambda s: self._erase(s, account_id, by="operator", operator=by.name, reason=by.reason)
        )

    @declares(NotFound)
    async def export(self, account_id: uuid.UUID, by: Operator) -> dict[str, Any]:
        document = await self.personal_data(account_id)
        await self._audited(
            "account_exported", by.client, account_id=account_id, operator=by.name,
            reason=by.reason,
        )  # fmt: skip
        return document

    async def audit_events(self, query: AuditQuery) -> list[AuditView]:
        return await audit.read(self._db, query)

    async def prune_audit(self, older_than_days: int, by: Operator) -> int:
        removed = await audit.prune(self._db, utcnow() - timedelta(days=older_than_days))
        await self._audited(
            "audit_pruned", by.client, operator=by.name, reason=by.reason,
            older_than_days=older_than_days, removed=removed,
        )  # fmt: skip
        return removed

    async def _audited(self, kind: str, client: ClientInfo, **detail: Any) -> None:
        """An audit row in a transaction of its own."""

        async def work(s: UnitOfWork) -> None:
            record(s, kind, client, **detail)

        await self._db.run_in_transaction(work)


async def purge_periodically(
    rights: Rights,
    interval: float,
    sleep: Any = asyncio.sleep,
    also: Sequence[Callable[[], Awaitable[object]]] = (),
) -> None:
    """The app's background task: carry out due deletions every ``interval`` seconds until
    cancelled (at shutdown), and the other maintenance chores in ``also`` (event retention),
    which this layer cannot name. A failed chore is logged and the next round tries again."""
    while True:
        await sleep(interval)
        try:
            done = await rights.carry_out_due()
        except Exception:
            log.exception("carrying out due deletions failed; retrying next round")
        else:
            if done:
                log.info("carried out %d due account deletion(s)", done)
        for chore in also:
            try:
                await chore()
            except Exception:
                log.exception("a maintenance chore failed; retrying next round")
