"""Taking one measurement, and judging it: targets, rows, and the loads behind them.

A row's figure is only written when the load behind it says what it should (``trusted``); an
exception inside ``Meter.row`` marks that row ERROR and lets the run go on to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from bench import loadgen, procs
from bench import profile as pyspy
from bench.loadgen import Spec, Stats
from bench.options import Options
from bench.stack import APPID

TIMES = "\u00d7"  # the multiplication sign


@dataclass(frozen=True)
class Target:
    """What a row must reach: a ratio by default, or an absolute rate (``unit="/s"``)."""

    op: str  # ">=" or "<="
    value: float
    unit: str = TIMES

    def met(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:g}{self.unit}"


@dataclass
class Row:
    """One line of the results: filled in by a row while it runs, read by the report."""

    db: str
    name: str
    target: Target | None
    measured: float | None = None
    detail: str = ""
    problem: str = ""  # an error, or too many failed requests: the figure is not trusted
    profile: str = ""
    failures: str = ""  # requests failed: a miss whatever the ratio
    per_core: float | None = None  # an absolute rate per CPU core, for the sizing table

    @property
    def result(self) -> str:
        if self.problem:
            return "ERROR"
        if self.measured is None:
            return "skipped"
        if self.target is None:
            return "info"
        return "pass" if self.target.met(self.measured) and not self.failures else "MISS"

    @property
    def shown(self) -> str:
        if self.measured is None:
            return "-"
        unit = self.target.unit if self.target else ""
        return f"{self.measured:.2f}{unit}" if unit == TIMES else f"{self.measured:.0f}{unit}"


def fmt_rate(stats: Stats) -> str:
    """The rate, and the server's CPU per answer when it was sampled: steadier than rates on
    a shared machine, where another tenant's load moves a rate but not the CPU a request costs."""
    cpu = stats.cpu_per_request
    shown = f"{stats.rate:,.0f}/s"
    return shown if cpu is None else f"{shown} at {cpu * 1000:.2f} ms CPU"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class Untrusted(Exception):
    """A measurement had too many failed requests to be a figure."""


def trusted(stats: Stats, what: str, max_errors: float = 0.01) -> Stats:
    """The stats, unless too many requests failed for the rate to mean anything."""
    if stats.ok == 0 or stats.error_ratio() > max_errors:
        raise Untrusted(
            f"{what}: {stats.errors} of {stats.ok + stats.errors} requests failed "
            f"({stats.error_sample})"
        )
    return stats


# -- setup requests (outside any measured window) --------------------------------------------


def mint(
    emulator: procs.Proc, users: Sequence[str], appid: str = APPID, scope: str | None = None
) -> list[str]:
    """Single-use login codes from the emulator, one per user, minted before the clock starts
    (an official account's with the ``scope`` the user consented to)."""
    extra = {"scope": scope} if scope else {}
    bodies = [json.dumps({"appid": appid, "user": u, **extra}).encode() for u in users]
    answers = asyncio.run(
        loadgen.post_many(emulator.port, bodies, path="/sandbox/codes", connections=16)
    )
    codes = []
    for status, body in answers:
        if status != 200:
            raise RuntimeError(f"the emulator refused to mint a code: {status} {body[:200]!r}")
        codes.append(json.loads(body)["code"])
    return codes


def post(
    port: int,
    bodies: Sequence[bytes],
    expect: bytes,
    headers: Sequence[Sequence[tuple[str, str]]] | None = None,
) -> list[dict[str, object]]:
    """Every body once, each answer checked: a setup step that fails stops the section."""
    answers = asyncio.run(loadgen.post_many(port, bodies, headers=headers))
    out = []
    for status, body in answers:
        if status != 200 or expect not in body:
            raise RuntimeError(f"setup request failed: HTTP {status} {body[:300]!r}")
        out.append(json.loads(body))
    return out


# -- measuring -------------------------------------------------------------------------------


class Meter:
    """Runs the loads of a run and keeps its rows, in the order they ran."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.rows: list[Row] = []

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    @contextlib.contextmanager
    def row(self, db: str, name: str, target: Target | None) -> Iterator[Row]:
        """A new row for the block to fill in; what goes wrong there marks it ERROR, no more."""
        row = self.add(Row(db, name, target))
        print(f"[{db}] {name} ...", flush=True)
        started = time.monotonic()
        try:
            yield row
        except (
            Untrusted,
            RuntimeError,
            OSError,
            ValueError,
            KeyError,
            TimeoutError,
        ) as exc:
            row.problem = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            print(f"    ERROR: {exc}", flush=True)
            return
        took = time.monotonic() - started
        print(f"    {row.shown} (target {row.target or '-'}): {row.detail}  [{took:.0f}s]")

    @contextlib.contextmanager
    def profiled(self, row: Row | None, proc: procs.Proc | None, seconds: float) -> Iterator[None]:
        """py-spy the gateway for the measurement, when ``--profile`` asks for it."""
        if self.opts.profile_dir is None or row is None or proc is None:
            yield
            return
        name = f"{row.db}-{row.name.split(':')[0]}".replace(" ", "_").replace("/", "_")
        out = self.opts.profile_dir / f"{name}.txt"
        spy = pyspy.start(proc.pid, out, seconds)
        try:
            yield
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(seconds + 30)
            if out.exists():
                row.profile = pyspy.summarize(out)
                print(f"    profile {out}: {row.profile}")

    def load(
        self, specs: Sequence[Spec], row: Row | None = None, proc: procs.Proc | None = None
    ) -> list[Stats]:
        """Run the specs at once; wrk (lighter on the CPU) takes a lone fixed-body load. With
        ``proc``, the first spec's stats say how much of its CPU each answer took."""
        if proc is None:
            return self._load(specs, row, proc)
        with procs.CpuSampler(proc.pid) as cpu:
            stats = self._load(specs, row, proc)
            end = time.monotonic()
        first = stats[0]
        if first.ok:
            first.cpu_per_request = cpu.between(end - first.elapsed, end) / first.ok
        return stats

    def _load(self, specs: Sequence[Spec], row: Row | None, proc: procs.Proc | None) -> list[Stats]:
        if (
            self.opts.use_wrk
            and len(specs) == 1
            and specs[0].kind == "cycle"
            and len(specs[0].bodies) == 1
            and not specs[0].forwarded_for
        ):
            # wrk has no ramp of its own: a separate run warms the server up first
            loadgen.run_wrk(replace(specs[0], duration=specs[0].ramp or self.opts.warm_seconds))
            with self.profiled(row, proc, specs[0].duration):
                return [loadgen.run_wrk(specs[0])]
        with self.profiled(row, proc, max(s.ramp + s.duration for s in specs)):
            return loadgen.run_load(specs, self.opts.loadgen_procs)

    def static_rate(
        self,
        port: int,
        body: bytes,
        expect: bytes,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        connections: int | None = None,
        row: Row | None = None,
        proc: procs.Proc | None = None,
    ) -> Stats:
        """The rate of one request sent again and again, once it is known to answer right."""
        post(port, [body], expect, headers=[headers])  # answers what we think it does
        spec = Spec(
            port,
            "cycle",
            (body,),
            expect,
            connections=connections or self.opts.connections,
            duration=self.opts.duration,
            headers=headers,
            ramp=self.opts.warm_seconds,
        )
        return trusted(self.load([spec], row, proc)[0], f"POST {body[:60]!r}")

    def code_logins(  # noqa: PLR0913  (each keyword is one knob of a measured load)
        self,
        port: int,
        emulator: procs.Proc,
        users: Callable[[int], list[str]],
        body: Callable[[str], bytes],
        expect: bytes,
        *,
        connections: int | None = None,
        row: Row | None = None,
        proc: procs.Proc | None = None,
        max_errors: float = 0.01,
    ) -> Stats:
        """Logins with fresh single-use codes, minted before the clock starts.

        A first batch (at least one code per client, and at least 100) estimates the rate, so
        that enough codes are minted for the ramp and the measured window.
        """
        conns = connections or self.opts.connections
        ramp, wanted = self._plan_logins(port, emulator, users, body, expect, conns, max_errors)
        codes = mint(emulator, users(min(wanted, 100_000)))
        spec = Spec(
            port,
            "queue",
            tuple(body(c) for c in codes),
            expect,
            conns,
            self.opts.duration,
            ramp=ramp,
        )
        return trusted(self.load([spec], row, proc)[0], "logins", max_errors)

    def _plan_logins(
        self,
        port: int,
        emulator: procs.Proc,
        users: Callable[[int], list[str]],
        body: Callable[[str], bytes],
        expect: bytes,
        conns: int,
        max_errors: float,
    ) -> tuple[float, int]:
        """The ramp and the number of codes a login measurement needs, from a first batch."""
        warm_codes = mint(emulator, users(max(100, conns)))
        warm = Spec(port, "queue", tuple(body(c) for c in warm_codes), expect, conns, 120.0)
        estimate = trusted(
            loadgen.run_load([warm], self.opts.loadgen_procs)[0], "warm-up", max_errors
        )
        # asyncio shares the loop between every request in flight: a steady state needs each
        # client to have had about one answer, some conns / rate seconds
        ramp = min(max(self.opts.warm_seconds, 1.5 * conns / estimate.rate), 30.0)
        wanted = int(estimate.rate * (ramp + self.opts.duration) * 1.5) + 2 * conns
        return ramp, wanted
