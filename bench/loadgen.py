"""Load generation: a raw asyncio HTTP/1.1 keep-alive client, and a wrapper around ``wrk``.

The Python generator writes pre-built request bytes and reads ``Content-Length`` answers on
persistent connections (no httpx, no per-request parsing beyond the status line and a success
marker), so one process drives several thousand requests a second with uvloop: well above the
rates it measures here. ``procs`` > 1 splits the connections (and any finite queue of bodies)
across that many processes.

Scenarios (``Spec.kind``):

- ``cycle``: connection *i* sends ``bodies[i % len(bodies)]`` again and again (closed loop).
- ``queue``: connections take bodies from one shared queue, each sent once (e.g. single-use
  login codes); the run ends early when the queue is empty.
- ``refresh``: connection *i* holds ``bodies[i]`` (a refresh token) and rotates it: every answer
  carries the token for its next request.
- ``probe``: open loop at ``rate`` requests/s; latency is measured from the *scheduled* send
  time, so a stalled server cannot hide its stall (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

HOST = "127.0.0.1"
Kind = Literal["cycle", "queue", "refresh", "probe"]
SETUP_TIMEOUT = 300.0  # seconds for a batch of setup requests
_REFRESH_TOKEN = re.compile(rb'"refreshToken":"([^"]+)"')


@dataclass(frozen=True)
class Spec:
    """One load: where, what, how many connections, how long."""

    port: int
    kind: Kind
    bodies: tuple[bytes, ...]
    expect: bytes  # a success contains this
    connections: int = 32
    duration: float = 10.0
    headers: tuple[tuple[str, str], ...] = ()
    forwarded_for: bool = False  # a distinct X-Forwarded-For per connection
    rate: float = 0.0  # probe: requests per second in total
    refresh_query: str = ""  # refresh: the GraphQL document; its variable is $token
    path: str = "/graphql"
    ramp: float = 0.0  # seconds of load before the measured window opens (not counted)


@dataclass
class Stats:
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, of successes in the window
    error_sample: str | None = None
    tool: str = "python"
    summary: dict[float, float] = field(default_factory=dict)  # wrk: percentile -> seconds
    cpu_per_request: float | None = None  # the server's CPU seconds per answer, in the window

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in seconds (0 when nothing was recorded)."""
        if q in self.summary:
            return self.summary[q]
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def merge(self, other: Stats) -> Stats:
        return Stats(
            ok=self.ok + other.ok,
            errors=self.errors + other.errors,
            elapsed=max(self.elapsed, other.elapsed),
            latencies=self.latencies + other.latencies,
            error_sample=self.error_sample or other.error_sample,
            tool=self.tool,
        )

    def error_ratio(self) -> float:
        total = self.ok + self.errors
        return self.errors / total if total else 1.0


# -- one keep-alive connection --------------------------------------------------------------


def build_request(
    port: int, path: str, body: bytes, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Content-Type: application/json",
        "User-Agent: gateway-bench",
        *(f"{name}: {value}" for name, value in headers),
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1") + body


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one request and read its answer; reconnects when the server hung up."""
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        assert self._reader is not None
        try:
            self._writer.write(request)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                end = lower.index(b"\r\n", at + 2)
                body = await self._reader.readexactly(int(lower[at + 17 : end]))
            else:
                body = await _read_chunked(self._reader)
            if b"\r\nconnection: close" in lower:
                await self.close()
            return status, body
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


# -- scenarios -------------------------------------------------------------------------------


class _Run:
    """The shared clock and tally of one spec in one process."""

    def __init__(self, spec: Spec, start: float) -> None:
        self.spec = spec
        self.start = start  # load starts
        self.window = start + spec.ramp  # counting starts
        self.end = self.window + spec.duration
        self.stats = Stats()
        self.last_done = self.window
        self.queue: deque[bytes] = deque(spec.bodies) if spec.kind == "queue" else deque()

    def headers(self, index: int) -> list[tuple[str, str]]:
        extra = list(self.spec.headers)
        if self.spec.forwarded_for:
            extra.append(
                ("X-Forwarded-For", f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}")
            )
        return extra

    def tally(self, sent_at: float, status: int, body: bytes) -> bool:
        done = time.perf_counter()
        ok = status == 200 and self.spec.expect in body
        if not self.window <= done <= self.end:
            return ok
        self.last_done = done
        if ok:
            self.stats.ok += 1
            self.stats.latencies.append(done - sent_at)
        else:
            self.stats.errors += 1
            if self.stats.error_sample is None:
                self.stats.error_sample = f"HTTP {status}: {body[:300]!r}"
        return ok

    def failed(self, exc: BaseException) -> None:
        if time.perf_counter() < self.window:
            return
        self.stats.errors += 1
        if self.stats.error_sample is None:
            self.stats.error_sample = f"{type(exc).__name__}: {exc}"


async def _closed_loop(run: _Run, index: int) -> None:
    spec = run.spec
    conn = Connection(spec.port)
    headers = run.headers(index)
    fixed = None
    if spec.kind == "cycle":
        fixed = build_request(spec.port, spec.path, spec.bodies[index % len(spec.bodies)], headers)
    token = spec.bodies[index].decode() if spec.kind == "refresh" else ""
    try:
        while time.perf_counter() < run.end:
            if fixed is not None:
                request = fixed
            elif spec.kind == "queue":
                if not run.queue:
                    return
                request = build_request(spec.port, spec.path, run.queue.popleft(), headers)
            else:
                body = json.dumps({"query": spec.refresh_query, "variables": {"token": token}})
                request = build_request(spec.port, spec.path, body.encode(), headers)
            sent = time.perf_counter()
            try:
                status, answer = await conn.send(request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                run.failed(exc)
                await asyncio.sleep(0.01)
                continue
            if run.tally(sent, status, answer) and spec.kind == "refresh":
                match = _REFRESH_TOKEN.search(answer)
                if match is None:
                    return
                token = match.group(1).decode()
            elif spec.kind == "refresh":
                return  # a broken chain cannot go on
    finally:
        await conn.close()


async def _probe(run: _Run) -> None:
    spec = run.spec
    request = build_request(spec.port, spec.path, spec.bodies[0], run.headers(0))
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    conns = [Connection(spec.port) for _ in range(spec.connections)]
    for conn in conns:
        idle.put_nowait(conn)
    tasks: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        conn = await idle.get()
        try:
            status, answer = await conn.send(request)
            run.tally(scheduled, status, answer)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            run.failed(exc)
        finally:
            idle.put_nowait(conn)

    try:
        k = 0
        while True:
            scheduled = run.start + k / spec.rate
            if scheduled >= run.end:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    finally:
        for task in tasks:
            task.cancel()
        for conn in conns:
            await conn.close()


async def _run_specs(specs: Sequence[Spec]) -> list[Stats]:
    start = time.perf_counter() + 0.05
    runs = [_Run(spec, start) for spec in specs]
    tasks = []
    for run in runs:
        if run.spec.kind == "probe":
            tasks.append(asyncio.create_task(_probe(run)))
        else:
            count = run.spec.connections
            if run.spec.kind == "refresh":
                count = min(count, len(run.spec.bodies))
            tasks += [asyncio.create_task(_closed_loop(run, i)) for i in range(count)]
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    try:
        longest = max(spec.ramp + spec.duration for spec in specs)
        done, pending = await asyncio.wait(tasks, timeout=longest + 15)
        for task in pending:
            task.cancel()
        for task in done:
            failure = task.exception()
            if failure is not None:
                raise failure
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    results = []
    for run in runs:
        stop = min(run.end, run.last_done) if run.spec.kind == "queue" else run.end
        run.stats.elapsed = max(stop - run.window, 1e-9)
        results.append(run.stats)
    return results


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def _worker(specs: Sequence[Spec]) -> list[Stats]:
    _install_uvloop()
    return asyncio.run(_run_specs(specs))


def _split(spec: Spec, procs: int, index: int) -> Spec:
    connections = max(1, spec.connections // procs + (index < spec.connections % procs))
    if spec.kind == "queue":
        return replace(spec, connections=connections, bodies=spec.bodies[index::procs])
    if spec.kind == "refresh":
        return replace(spec, connections=connections, bodies=spec.bodies[index::procs])
    if spec.kind == "probe":
        return replace(spec, rate=spec.rate / procs, connections=connections)
    return replace(spec, connections=connections)


def run_load(specs: Sequence[Spec], procs: int = 1) -> list[Stats]:
    """Run every spec at once; one Stats per spec, merged over the ``procs`` processes."""
    if procs <= 1:
        return _worker(specs)
    parts = [[_split(spec, procs, i) for spec in specs] for i in range(procs)]
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as pool:
        answers = list(pool.map(_worker, parts))
    merged = answers[0]
    for other in answers[1:]:
        merged = [a.merge(b) for a, b in zip(merged, other, strict=True)]
    return merged


# -- one-off requests, for setup -------------------------------------------------------------


async def post_many(
    port: int,
    bodies: Sequence[bytes],
    *,
    path: str = "/graphql",
    connections: int = 16,
    headers: Sequence[Sequence[tuple[str, str]]] | None = None,
) -> list[tuple[int, bytes]]:
    """POST every body once (concurrently), answers in order; for setup, not for measuring."""
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(bodies)
    todo = deque(range(len(bodies)))

    async def loop() -> None:
        conn = Connection(port)
        try:
            while todo:
                i = todo.popleft()
                extra = headers[i] if headers is not None else ()
                answers[i] = await conn.send(build_request(port, path, bodies[i], extra))
        finally:
            await conn.close()

    loops = asyncio.gather(*(loop() for _ in range(min(connections, len(bodies)) or 1)))
    await asyncio.wait_for(loops, SETUP_TIMEOUT)
    return answers


# -- wrk -------------------------------------------------------------------------------------

_WRK_SCRIPT = """
local f = assert(io.open(BODY_PATH, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
HEADERS
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"status\\":%d,\\"socket\\":%d,"
    .. "\\"p50_us\\":%d,\\"p99_us\\":%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(spec: Spec, threads: int = 1) -> Stats:
    """A ``cycle`` spec with one body, driven by wrk (non-2xx answers count as errors)."""
    wrk = wrk_path()
    if wrk is None or spec.kind != "cycle" or len(spec.bodies) != 1 or spec.forwarded_for:
        raise ValueError("wrk runs one fixed body")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body = Path(tmp) / "body.json"
        body.write_bytes(spec.bodies[0])
        headers = "\n".join(
            f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in spec.headers
        )
        script = Path(tmp) / "post.lua"
        lua = _WRK_SCRIPT.replace("BODY_PATH", json.dumps(str(body))).replace("HEADERS", headers)
        script.write_text(lua, encoding="utf-8")
        seconds = max(1, round(spec.duration))
        argv = [
            wrk,
            f"-t{max(1, min(threads, spec.connections))}",
            f"-c{spec.connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://{HOST}:{spec.port}{spec.path}",
        ]
        out = subprocess.run(  # noqa: S603 - our own argv
            argv, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    errors = data["status"] + data["socket"]
    return Stats(
        ok=max(0, data["requests"] - data["status"]),
        errors=errors,
        elapsed=data["duration_us"] / 1e6,
        tool="wrk",
        error_sample=f"{errors} non-2xx or socket errors" if errors else None,
        summary={50: data["p50_us"] / 1e6, 99: data["p99_us"] / 1e6},
    )
