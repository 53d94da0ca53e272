"""The delivery worker: a background task of every gateway process, outside the request path.

Each round: is there anything to do (one indexed read, all an idle round costs)? Then dispatch
new events to partners' queues (one dispatcher at a time across processes), claim due
deliveries up to the free slots (``[events] concurrency`` in flight per process) and send each
in a task of its own, which records its outcome and wakes the loop, so the next event of the
same account goes out at once rather than at the next poll. A slow receiver holds one slot for
at most ``[events] timeout_seconds``; a login never waits for any of it.

Partners are read afresh in every round that has work (one small read, never when idle): a
partner added, changed or disabled from the CLI, by any process, takes effect at once, without
a restart; an event committed after the change is dispatched and signed by the new state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.config import EventsModel
from gateway.events import queue
from gateway.events.delivery import Sender, encode
from gateway.events.dispatch import FAILED, PENDING, dispatch_once
from gateway.events.queue import Claim, Outcome
from gateway.events.render import body
from gateway.metrics import (
    EVENT_ATTEMPTS,
    EVENT_DELIVERY_SECONDS,
    EVENTS_DELIVERED,
    EVENTS_FAILED,
    EVENTS_PENDING,
)
from gateway.partners.entitlements import Entitlements
from gateway.partners.registry import Partners, PartnerView
from gateway.partners.webhooks import WebhookSecrets
from gateway.store.db import Database, is_unavailable
from gateway.store.models import utcnow
from gateway.store.secretbox import SealError

log = logging.getLogger("gateway.events")

_GAUGE_SECONDS = 15.0
_DISPATCH_BATCH = 500


def _log_failure(exc: Exception) -> None:
    """The first failed round of a streak: an unreachable database is a condition, said in one
    line (no traceback); anything else is a fault, with its traceback."""
    if is_unavailable(exc):
        log.warning("webhook delivery waits for the database (%s)", type(exc).__name__)
    else:
        log.warning("webhook delivery round failed; retrying", exc_info=exc)


def message_id(claim: Claim) -> str:
    """``webhook-id``: the event's id, the same in every attempt and in the pull feed."""
    return str(claim.event.id)


@dataclass(frozen=True)
class Roster:
    """The partners as last read: their views and sealed webhook secrets."""

    partners: dict[str, tuple[PartnerView, str | None]]

    @property
    def views(self) -> list[PartnerView]:
        return [view for view, _ in self.partners.values()]


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        partners: Partners,
        secrets: WebhookSecrets,
        rules: Entitlements,
        sender: Sender,
        settings: EventsModel,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db, self._partners, self._secrets = db, partners, secrets
        self._rules, self._sender, self._settings, self._clock = rules, sender, settings, clock
        self._flying: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._gauge_at = 0.0

    async def run(self) -> None:
        """Until cancelled (the app's shutdown). A failed round (the database away, not yet
        migrated) is logged once per streak and tried again, less often the longer it lasts."""
        failures = 0
        try:
            while True:
                try:
                    more = await self.step()
                except Exception as exc:
                    failures += 1
                    if failures == 1:
                        _log_failure(exc)
                    await asyncio.sleep(
                        min(self._settings.poll_seconds * 2 ** min(failures, 10), 30.0)
                    )
                    continue
                if failures:
                    log.info("webhook delivery rounds work again")
                failures = 0
                if not more:
                    await self._idle()
        finally:
            await self._land()

    async def step(self) -> bool:
        """One round; whether there may be more to do at once."""
        free = self._settings.concurrency - len(self._flying)
        work = await queue.anything_to_do(self._db, self._clock()) if free > 0 else None
        if not work:
            await self._count_pending(idle=True)
            return False
        roster = await self._current()
        dispatched = 0
        if work.dispatch:
            dispatched = await dispatch_once(self._db, roster.views, self._rules, _DISPATCH_BATCH)
        lease = self._settings.lease_seconds
        claims = await queue.claim(self._db, self._clock(), lease, free)
        for claim in claims:
            task = asyncio.create_task(self._deliver(claim, roster))
            self._flying.add(task)
        await self._count_pending(idle=False)
        return dispatched == _DISPATCH_BATCH  # else: woken when a delivery ends, or polls

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.poll_seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _current(self) -> Roster:
        await self._partners.ensure_synced()
        found = await self._partners.with_secrets()
        return Roster({view.client_id: (view, sealed) for view, sealed in found})

    async def _deliver(self, claim: Claim, roster: Roster) -> None:
        try:
            outcome = await self._attempt(claim, roster)
            if outcome is None:
                await queue.to_feed(self._db, claim)
                return
            status = await queue.record(
                self._db, claim, outcome, self._clock(), self._settings.retry_seconds
            )
            self._observe(claim, outcome, status)
        except Exception:  # the claim's lease ends and the attempt is made again
            log.exception("webhook delivery of event %s failed to record", claim.event.id)
        finally:
            self._flying.discard(asyncio.current_task())
            self._wake.set()

    async def _attempt(self, claim: Claim, roster: Roster) -> Outcome | None:
        """None: the partner has no webhook now (its feed has the event)."""
        view, sealed = roster.partners.get(claim.partner_id, (None, None))
        if view is None or view.disabled:
            return Outcome(False, error="partner disabled", final=True)
        if not view.webhook_url or not sealed:
            return None
        try:
            secret = self._secrets.open(view.client_id, sealed)
        except SealError:
            return Outcome(False, error="webhook secret does not open (GATEWAY_SECRET_KEY?)")
        payload = encode(body(claim.event, view, self._rules))
        return await self._sender.send(view.webhook_url, secret, message_id(claim), payload)

    def _observe(self, claim: Claim, outcome: Outcome, status: str) -> None:
        if outcome.delivered:
            EVENTS_DELIVERED.inc()
            latency = (self._clock() - claim.event.occurred_at).total_seconds()
            EVENT_DELIVERY_SECONDS.observe(max(latency, 0.0))
            EVENT_ATTEMPTS.labels("delivered").inc()
            return
        EVENT_ATTEMPTS.labels("failed" if status == FAILED else "retry").inc()
        if status == FAILED:
            EVENTS_FAILED.inc()
            log.warning(
                "webhook of event %s to %s failed for good after %d attempt(s): %s",
                claim.event.id,
                claim.partner_id,
                claim.attempt,
                outcome.error,
            )
        elif status == PENDING:
            log.info(
                "webhook of event %s to %s: %s", claim.event.id, claim.partner_id, outcome.error
            )

    async def _count_pending(self, *, idle: bool) -> None:
        """The pending gauge (a count on an index): at most every second while working, every
        ``_GAUGE_SECONDS`` while idle."""
        now = time.monotonic()
        if now - self._gauge_at < (_GAUGE_SECONDS if idle else 1.0):
            return
        self._gauge_at = now
        EVENTS_PENDING.set(await queue.pending_count(self._db))

    async def _land(self) -> None:
        """At shutdown: attempts in flight are abandoned (their leases end, another process or
        the next start sends them again: at least once)."""
        for task in list(self._flying):
            task.cancel()
        for task in list(self._flying):
            with contextlib.suppress(asyncio.CancelledError):
                await task
