"""The soak's invariants, judged at the end from what the load generator saw, the fault
windows, the database and Redis. Each check returns problems (empty: it holds).

- no 5xx (a masked "Internal server error." counts as one) at all; a connection lost
  mid-request only on the killed process, around its kill;
- the password hasher's load shedding (``answers.SHED``) at any time: it is load, not a fault;
- typed temporary refusals only during a fault and the ``GRACE`` seconds after it; any other
  unexpected answer never;
- every operation recovers within ``GRACE`` seconds after each fault ends;
- no duplicate account for one person (the client's view, and no account without identities);
- every success the client saw has its audit row with the client's platform, every new
  account its ``account.created`` event, every newly linked phone its ``phone.bound``, and
  every webhook delivery the gateway recorded reached the receiver;
- no Redis key without an expiry; every single-flight key (a lock, or an outcome kept for a
  retry that lands on another process) gone within ``FLIGHT_SECONDS``: its remaining life, read
  when the load is over, is at most that (Redis removes it then; waiting to watch it go
  cost CI a minute and proved nothing more).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from bench.soak.answers import CONNECTION, SERVER_FAULTS, SHED, TEMPORARY, Outcome

GRACE = 15.0
FLIGHT_SECONDS = 60.0
AUDIT_KINDS = ("login", "register", "refresh", "refresh_grace", "bind_unionid", "bind_phone")
AUDIT_KINDS_ALL = (*AUDIT_KINDS, "login_failed")


@dataclass
class Fault:
    """One fault: when it started and ended (seconds into the soak), on which gateway port."""

    name: str
    start: float
    end: float = 0.0
    port: int = 0
    detail: str = ""

    def covers(self, t: float) -> bool:
        return self.start <= t <= self.end + GRACE


def answer_problems(outcomes: Iterable[Outcome], faults: Sequence[Fault]) -> list[str]:
    """Answers that break the rules, grouped by (operation, result, why)."""
    bad: Counter[tuple[str, str, str]] = Counter()
    for o in outcomes:
        if o.result in ("ok", "expected", SHED):
            continue
        killed = [f for f in faults if f.port and f.port == o.port and f.start - 1 <= o.t]
        if o.result in CONNECTION and any(o.t <= f.end + GRACE for f in killed):
            continue  # in flight on the killed process, or sent while it restarted
        if o.result in SERVER_FAULTS:
            bad[(o.op, o.result, "a server error")] += 1
        elif not any(f.covers(o.t) for f in faults):
            bad[(o.op, o.result, "outside any fault")] += 1
        elif o.result not in TEMPORARY and o.result not in CONNECTION:
            bad[(o.op, o.result, "not a typed temporary refusal")] += 1
    return [f"{n} x {op}: {result} ({why})" for (op, result, why), n in sorted(bad.items())]


def recovery(outcomes: Sequence[Outcome], fault: Fault, until: float) -> dict[str, float]:
    """Per operation, seconds from the fault's end to its last failed answer before ``until``
    (0: none after the end)."""
    last: dict[str, float] = {}
    for o in outcomes:
        if fault.start <= o.t <= until:
            last.setdefault(o.op, 0.0)
            if o.result not in ("ok", "expected", SHED):
                last[o.op] = max(last[o.op], o.t - fault.end)
    return last


def episodes(faults: Sequence[Fault]) -> list[tuple[Fault, float]]:
    """Each fault with the end of its episode: ``4 * GRACE`` after it, or the next fault."""
    ends = [f.start for f in faults[1:]] + [float("inf")]
    return [(f, min(f.end + 4 * GRACE, nxt)) for f, nxt in zip(faults, ends, strict=True)]


def recovery_problems(outcomes: Sequence[Outcome], faults: Sequence[Fault]) -> list[str]:
    return [
        f"{fault.name}: {op} still failing {seconds:.1f} s after the fault ended"
        for fault, until in episodes(faults)
        for op, seconds in recovery(outcomes, fault, until).items()
        if seconds > GRACE
    ]


def audit_problems(seen: Counter[str], counted: dict[str, int], stray: int) -> list[str]:
    """``seen``: successes by audit kind ("a|b": either); ``counted``: audit rows by kind
    with the soak's platforms; ``stray``: rows of those kinds without one of them."""
    problems = [f"{stray} audit rows of the soak's kinds without the client's platform"] * bool(
        stray
    )
    for kinds, n in sorted(seen.items()):
        rows = sum(counted.get(kind, 0) for kind in kinds.split("|"))
        if rows < n:
            problems.append(f"audit {kinds}: {rows} rows for {n} successes the client saw")
    return problems


@dataclass
class Store:
    """What the database says at the end."""

    audit: dict[str, int]
    stray_audit: int
    created: set[str]
    phone_bound: int
    orphans: int
    delivered: set[str]
    pending: int
    failed: int


async def read_store(dsn: str, platforms: Sequence[str]) -> Store:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT kind, count(*) AS n FROM audit_events WHERE platform = ANY($1) GROUP BY kind",
            list(platforms),
        )
        stray = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE kind = ANY($1) "
            "AND (platform IS NULL OR NOT platform = ANY($2))",
            list(AUDIT_KINDS_ALL),
            list(platforms),
        )
        created = await conn.fetch(
            "SELECT account_id FROM account_events WHERE type = 'account.created'"
        )
        bound = await conn.fetchval(
            "SELECT count(*) FROM account_events WHERE type = 'phone.bound'"
        )
        orphans = await conn.fetchval(
            "SELECT count(*) FROM accounts a WHERE a.merged_into_id IS NULL "
            "AND a.deleted_at IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM identities i WHERE i.account_id = a.id)"
        )
        deliveries = await conn.fetch(
            "SELECT e.id, p.status FROM partner_events p JOIN account_events e "
            "ON e.seq = p.event_seq"
        )
    finally:
        await conn.close()
    statuses = Counter(str(r["status"]) for r in deliveries)
    return Store(
        audit={str(r["kind"]): int(r["n"]) for r in rows},
        stray_audit=int(stray),
        created={str(r["account_id"]) for r in created},
        phone_bound=int(bound),
        orphans=int(orphans),
        delivered={str(r["id"]) for r in deliveries if r["status"] == "delivered"},
        pending=statuses["pending"],
        failed=statuses["failed"],
    )


def store_problems(
    store: Store,
    seen: Counter[str],
    new_accounts: set[str],
    phones_linked: int,
    received: set[str],
    duplicates: Sequence[str],
) -> list[str]:
    problems = audit_problems(seen, store.audit, store.stray_audit)
    missing = new_accounts - store.created
    if missing:
        problems.append(f"{len(missing)} new accounts without account.created")
    if store.phone_bound < phones_linked:
        problems.append(f"phone.bound: {store.phone_bound} events for {phones_linked} links")
    if store.orphans:
        problems.append(f"{store.orphans} accounts without any identity")
    problems += [f"duplicate account: {d}" for d in duplicates[:5]]
    if store.pending or store.failed:
        problems.append(f"webhooks not delivered: {store.pending} pending, {store.failed} failed")
    lost = store.delivered - received
    if lost:
        problems.append(f"{len(lost)} webhooks recorded delivered but never received")
    return problems


async def redis_problems(url: str) -> tuple[list[str], int]:
    """Keys without expiry and single-flight keys that would outlive ``FLIGHT_SECONDS``; and
    how many keys there are."""
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    problems: list[str] = []
    keys = 0
    try:
        async for key in redis.scan_iter(count=500):
            keys += 1
            name = key.decode(errors="replace")
            ttl = await redis.ttl(key)
            if ttl == -1:
                problems.append(f"Redis key without expiry: {name[:60]}")
            elif name.startswith("gw:flight") and ttl > FLIGHT_SECONDS:
                problems.append(f"single-flight key left for {ttl} s: {name[:60]}")
    finally:
        await redis.aclose()
    return problems[:20], keys
