"""How long account events are kept: ``[events] retention_days`` (30 by default), then the
maintenance task of every gateway (``purge_periodically``) and ``gateway audit prune`` remove
them with their partner rows, webhook and feed alike.

Retention is the promise, whatever an event's state: a delivery still pending when its event
is older than the retention is given up with it (and the log says how many were). The retry
schedule ends hours after an event, so only a queue stuck for weeks (a partner's receiver down
longer than the retention, a dispatcher that never ran) reaches it; keeping such rows forever
would grow the tables without bound for a receiver that may never return. A partner that can
be away longer needs a longer ``retention_days``, and it can always read the feed meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from gateway.events import repository
from gateway.events.repository import Pruned
from gateway.store.db import Database
from gateway.store.models import utcnow

log = logging.getLogger(__name__)


async def prune_expired(db: Database, retention_days: int, now: datetime | None = None) -> Pruned:
    """Remove events that occurred more than ``retention_days`` before ``now``."""
    pruned = await repository.prune(db, (now or utcnow()) - timedelta(days=retention_days))
    if pruned.undelivered:
        log.warning(
            "gave up %d webhook deliveries older than the %d-day event retention",
            pruned.undelivered,
            retention_days,
        )
    if pruned.events:
        log.info("pruned %d account event(s) older than %d days", pruned.events, retention_days)
    return pruned
