"""The pull feed: a partner's events in the order it receives them, for partners that cannot
take webhooks (or that want to catch up after an outage).

A partner's feed is its rows of ``partner_events``, by ``position``: the dispatcher inserts
them one dispatcher at a time, in the order their events committed, so a reader never sees a
lower position appear behind a higher one, and a cursor (a position, written opaquely) stays
valid in every process and after every restart. Which partner receives an event was decided
when it was dispatched, by the rule of lookups by id (``Entitlements.sees``); what it shows of
the event is rendered now by ``render.data``, the same body a webhook carries.

A read first lets the dispatcher catch up when the outbox holds undispatched events (one
indexed probe when it is idle), so an event committed before the read is in it, whether or
not the background dispatcher has run since: a partner polling right after a change sees it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.audit import ClientInfo, record
from gateway.errors import InvalidInput, RateLimited, declares
from gateway.events import repository
from gateway.events.dispatch import dispatch_once
from gateway.events.render import data, opaque_id
from gateway.events.repository import Positioned
from gateway.partners.entitlements import Entitlements
from gateway.partners.rate import PartnerRate
from gateway.partners.registry import Partners, PartnerView
from gateway.store.db import Database, UnitOfWork

log = logging.getLogger(__name__)

MAX_PAGE = 100
_BATCH = 500  # events per dispatch round
_ATTEMPTS = 20  # a read catches up at most this many rounds; the background dispatcher the rest
_BUSY_PAUSE = 0.025  # seconds between rounds while another process holds the dispatch lock
_PREFIX = "pe:"


@dataclass(frozen=True)
class FeedItem:
    """One event as this partner sees it; ``data`` is ``render.data``, as in a webhook."""

    cursor: str
    id: uuid.UUID
    type: str
    occurred_at: datetime
    account_id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FeedPage:
    """``end_cursor``: the last item's cursor, or the ``after`` asked with when the page is
    empty, so a poller can always pass it back."""

    items: list[FeedItem]
    has_next: bool
    end_cursor: str | None


@dataclass(frozen=True)
class FeedRequest:
    partner: PartnerView
    after: str | None
    first: int
    ip: str | None


def cursor(position: int) -> str:
    """A position, opaque to partners (they must not do arithmetic on it)."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{position}".encode()).decode().rstrip("=")


@declares(InvalidInput)
def position(given: str | None) -> int:
    """The position a cursor stands for (0: from the oldest event kept)."""
    if not given:
        return 0
    try:
        text = base64.urlsafe_b64decode(given + "=" * (-len(given) % 4)).decode()
        if text.startswith(_PREFIX) and text[len(_PREFIX) :].isdigit():
            return int(text[len(_PREFIX) :])
    except (binascii.Error, ValueError):
        pass
    raise InvalidInput("after", "`after` is not a cursor from this feed.")


@declares(InvalidInput)
def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInput("first", "`first` must be between 1 and %(max)s.", max=MAX_PAGE)
    return first


class EventFeed:
    """Reads a partner's feed: validate, admit (the partner's rate, as lookups), catch the
    dispatcher up, read, render, audit."""

    def __init__(
        self, db: Database, partners: Partners, rules: Entitlements, rate: PartnerRate
    ) -> None:
        self._db = db
        self._partners = partners
        self._rules = rules
        self._rate = rate

    @declares(InvalidInput, RateLimited)
    async def page(self, request: FeedRequest) -> FeedPage:
        first, after = page_size(request.first), position(request.after)
        partner = request.partner
        try:
            await self._rate.spend(partner.client_id, 1, partner.rate_limit_per_minute)
        except RateLimited as exc:
            await self._audit(request, "partner_refused", reason=exc.code)
            raise
        await self.catch_up()
        found = await repository.page(self._db, partner.client_id, after, first)
        items = [self._item(p, partner) for p in found[:first]]
        if items:  # an empty poll reveals nothing: no audit row per idle poll
            await self._audit(request, "partner_read", returned=len(items))
        end = items[-1].cursor if items else request.after
        return FeedPage(items, len(found) > first, end)

    async def catch_up(self) -> None:
        """Dispatch what the outbox holds before reading, so that an event committed before
        the read is in it. Another process dispatching (PostgreSQL's advisory lock taken) is
        waited for briefly: its commit is one insert away, and a poll right after a change
        must not miss it. A failure here only delays: the background dispatcher retries, and
        the read answers what was dispatched."""
        try:
            partners = None
            for _ in range(_ATTEMPTS):
                if not await repository.undispatched(self._db):
                    return
                partners = partners or await self._partners.all()
                if not await dispatch_once(self._db, partners, self._rules, _BATCH):
                    await asyncio.sleep(_BUSY_PAUSE)  # another dispatcher is at it
        except Exception:
            log.exception("dispatching before a feed read failed; answering what is dispatched")

    def _item(self, found: Positioned, partner: PartnerView) -> FeedItem:
        event = found.event
        return FeedItem(
            cursor=cursor(found.position),
            id=event.id,
            type=event.type.value,
            occurred_at=event.occurred_at,
            account_id=opaque_id("Account", event.account_id),
            data=data(event, partner, self._rules),
        )

    async def _audit(self, request: FeedRequest, kind: str, **detail: Any) -> None:
        client = ClientInfo("partner", ip=request.ip)

        async def work(s: UnitOfWork) -> None:
            record(s, kind, client, partner=request.partner.client_id, query="events", **detail)

        await self._db.run_in_transaction(work)
