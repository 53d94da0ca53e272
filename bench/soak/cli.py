"""``python -m bench soak``: many simulated users for N minutes against P gateway processes on
PostgreSQL and Redis, with faults on the way, then the invariants (bench/soak/checks.py).

    .venv/bin/python -m bench soak --minutes 10 --processes 2     # the soak, into RESULTS.md
    .venv/bin/python -m bench soak --ci                           # 60 s, one kill: CI's

Exit status 0 when every invariant holds, 1 when one does not (the problems are printed), 130
when interrupted. Speeds are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import procs
from bench.report import gateway_revision, loadavg, machine, write_results
from bench.soak import checks, faults, report
from bench.soak.faults import Samples
from bench.soak.receiver import Receiver
from bench.soak.stack import SoakStack, dsn
from bench.soak.traffic import PLATFORMS, Actor, Log, Population, run_actors

BENCH = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


@dataclass
class Run:
    """Everything one soak produced."""

    log: Log
    faults: list[checks.Fault]
    samples: Samples
    problems: list[str] = field(default_factory=list)
    received: int = 0
    redis_keys: int = 0
    load: list[float] = field(default_factory=list)


async def soak(a: argparse.Namespace, stack: SoakStack) -> Run:
    """Servers up, users and faults for the duration, a settling time, then the checks."""
    receiver = Receiver(stack.webhook_secret)
    stack.receiver_port = await receiver.start()
    await asyncio.to_thread(stack.start)
    assert stack.emulator is not None
    log = Log()
    ports = [proc.port for proc in stack.gateways]
    actors = [
        Actor(i, ports, stack.emulator.port, log, stack.partner_secret) for i in range(a.actors)
    ]
    seconds = a.minutes * 60
    injector = faults.Injector(stack, log)
    samples = Samples()
    run = Run(log, injector.faults, samples)
    print(f"[soak] {a.actors} users on {len(ports)} gateways for {seconds:.0f} s", flush=True)
    await asyncio.gather(
        run_actors(actors, Population(new_share=0.3), seconds, log),
        injector.run(faults.schedule(a.minutes, a.ci)),
        faults.sample(stack, log, samples, seconds, 2.0),
        _load(run, log, seconds),
    )
    print(f"[soak {log.now():6.1f}s] load over; settling, then the checks", flush=True)
    run.problems = await _checks(stack, run, receiver)
    run.received = len(receiver.received)
    if receiver.bad_signatures:
        run.problems.append(f"{receiver.bad_signatures} webhooks with a bad signature")
    await receiver.close()
    return run


async def _load(run: Run, log: Log, until: float) -> None:
    while log.now() < until:
        run.load.append(loadavg())
        await asyncio.sleep(15)


async def _checks(stack: SoakStack, run: Run, receiver: Receiver) -> list[str]:
    """Waits up to a minute for webhooks to drain (and any Redis problem to clear)."""
    end = time.monotonic()
    db = dsn(stack.pg_url, stack.db_name)
    while True:
        store = await checks.read_store(db, PLATFORMS)
        redis, run.redis_keys = await checks.redis_problems(stack.redis_url)
        settled = not store.pending and not redis and store.delivered <= receiver.received
        if settled or time.monotonic() - end > checks.FLIGHT_SECONDS:
            break
        await asyncio.sleep(2)
    log = run.log
    return [
        *checks.answer_problems(log.outcomes, run.faults),
        *checks.recovery_problems(log.outcomes, run.faults),
        *checks.store_problems(
            store, log.seen, log.new_accounts, log.phones_linked, receiver.received, log.duplicates
        ),
        *redis,
    ]


def render(a: argparse.Namespace, run: Run, started: datetime, plot_name: str) -> str:
    seconds = a.minutes * 60
    log = run.log
    killed = {a.processes - 1} if any(f.name == "kill" for f in run.faults) else set()
    loads = ", ".join(f"{x:.1f}" for x in run.load[::4]) or "?"
    verdict = (
        "every invariant held"
        if not run.problems
        else "PROBLEMS:\n\n" + "\n".join(f"- {p}" for p in run.problems)
    )
    lines = [
        f"### Soak: {a.minutes:g} minutes, {a.processes} gateway processes, PostgreSQL and Redis",
        "",
        f"`python -m bench soak --minutes {a.minutes:g} --processes {a.processes}` on "
        f"{started:%Y-%m-%d %H:%M} UTC, gateway {gateway_revision()}; {machine()}. "
        f"Load average every minute: {loads} (on {os.cpu_count()} CPUs, shared with other "
        f"jobs). {a.actors} simulated users at once, {len(log.new_accounts)} accounts created, "
        f"{run.received} webhooks received, {log.failovers} connections refused and sent to "
        f"the other gateway, {run.redis_keys} Redis keys at the end.",
        "",
        f"Result: {verdict}",
        "",
        f"![p99 and RSS over time]({plot_name})",
        "",
        "Faults (recovery: seconds from the fault's end to the operation's last failure;"
        f" bound {checks.GRACE:.0f} s):",
        "",
        *report.faults_table(log.outcomes, run.faults),
        "",
        "Per operation over the whole soak:",
        "",
        *report.operations_table(log.outcomes, seconds),
        "",
        "Per minute (latencies in ms; RSS the highest sample of the minute; PG conns the most"
        " connections to the soak's database):",
        "",
        *report.minutes_table(log.outcomes, run.samples, run.faults),
        "",
        "Memory: " + report.memory_line(run.samples, killed),
    ]
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=2, help="gateway processes (default 2)")
    p.add_argument("--actors", type=int, help="users at once (default 24; --ci 8)")
    p.add_argument("--ci", action="store_true", help="60 s, one kill, invariants only")
    p.add_argument("--pg-url", default=DEFAULT_PG)
    p.add_argument("--results", type=Path, help="markdown file (default: bench/RESULTS.md)")
    p.add_argument("--plot", type=Path, default=BENCH / "soak.png")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    if a.ci:
        a.minutes = 1.0
    a.actors = a.actors or (8 if a.ci else 24)
    if a.processes < 2:
        p.error("--processes must be at least 2: one is killed while the other serves")
    if a.results is None and not a.ci:
        a.results = BENCH / "RESULTS.md"
    return a


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str]) -> int:
    a = parse(argv)
    for tool in ("redis-server",):
        if shutil.which(tool) is None:
            print(f"the soak needs {tool}", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    processes = procs.Processes(tmp)
    stack = SoakStack(tmp, processes, a.pg_url, a.processes)
    started = datetime.now(UTC)
    ok = False
    try:
        run = asyncio.run(soak(a, stack))
        ok = True
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process the soak started", file=sys.stderr)
        return 130
    finally:
        processes.close()
        with contextlib.suppress(Exception):
            stack.drop()
        if a.keep or not ok:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    text = render(a, run, started, a.plot.name)
    print(text)
    if a.results is not None:
        report.plot(run.log.outcomes, run.samples, run.faults, a.plot)
        write_results(a.results, "soak", text)
        print(f"\nwrote {a.results} and {a.plot}")
    return 1 if run.problems else 0
