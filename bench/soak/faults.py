"""The faults, at set times of the soak, and the sampler of memory and PostgreSQL connections.

- ``kill``: SIGKILL of the last gateway process, started again on the same port (the fault
  lasts until it answers ``/readyz``);
- ``postgres``: ``pg_terminate_backend`` of every backend of the soak's database, every half
  second for three seconds (one termination rarely shows what a pool does wrong);
- ``redis``: the soak's own redis-server killed, and started again (empty) a second later;
- ``wechat``: the emulator 2 s late on every call and failing 10% of them, for a minute.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench import procs
from bench.soak.checks import Fault
from bench.soak.stack import SoakStack, dsn
from bench.soak.traffic import Log, request

WECHAT_BAD_SECONDS = 60.0


def schedule(minutes: float, ci: bool) -> list[tuple[str, float]]:
    """(fault, seconds into the soak): spread so that each has its quiet time after it."""
    total = minutes * 60
    if ci:
        return [("kill", total / 3)]
    return [
        ("kill", 0.2 * total),
        ("postgres", 0.35 * total),
        ("redis", 0.5 * total),
        ("wechat", 0.65 * total),
    ]


class Injector:
    def __init__(self, stack: SoakStack, log: Log) -> None:
        self.stack = stack
        self.log = log
        self.faults: list[Fault] = []

    async def run(self, plan: list[tuple[str, float]]) -> None:
        for name, at in plan:
            await asyncio.sleep(max(0.0, at - self.log.now()))
            fault = Fault(name, self.log.now())
            self.faults.append(fault)
            print(f"[soak {fault.start:6.1f}s] fault: {name}", flush=True)
            fault.detail = await getattr(self, name)(fault)
            fault.end = self.log.now()
            print(f"[soak {fault.end:6.1f}s] fault over: {name} ({fault.detail})", flush=True)

    async def kill(self, fault: Fault) -> str:
        index = len(self.stack.gateways) - 1
        old = self.stack.gateways[index]
        fault.port = old.port
        new = await asyncio.to_thread(self.stack.kill_gateway, index)
        return f"pid {old.pid} killed, pid {new.pid} serving on :{new.port} again"

    async def postgres(self, fault: Fault) -> str:
        counts = []
        for _ in range(7):  # at 0, 0.5, ... 3 s
            counts.append(await self.stack.terminate_backends())
            await asyncio.sleep(0.5)
        return f"{sum(counts)} backends terminated in 7 rounds ({counts})"

    async def redis(self, fault: Fault) -> str:
        await asyncio.to_thread(self.stack.restart_redis)
        return "redis-server killed, started again empty after 1 s"

    async def wechat(self, fault: Fault) -> str:
        await self._weather(2000, 0.1)
        await asyncio.sleep(WECHAT_BAD_SECONDS)
        await self._weather(0, 0)
        return f"WeChat 2 s late, 10% failing, for {WECHAT_BAD_SECONDS:.0f} s"

    async def _weather(self, latency_ms: float, failure_rate: float) -> None:
        assert self.stack.emulator is not None
        port = self.stack.emulator.port
        body = json.dumps({"latency_ms": latency_ms, "failure_rate": failure_rate}).encode()
        reader, writer = await asyncio.open_connection(procs.HOST, port)
        try:
            headers = [("Content-Type", "application/json"), ("Connection", "close")]
            writer.write(request(port, "/sandbox/weather", body, headers))
            answer = await reader.read()
        finally:
            writer.close()
        if b" 200 " not in answer.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"the emulator refused the weather: {answer[:200]!r}")


@dataclass
class Samples:
    """Every ``every`` seconds: each gateway's RSS (MiB, by its index and pid) and the
    connections PostgreSQL has open to the soak's database."""

    rss: list[tuple[float, int, int, float]] = field(default_factory=list)
    pg: list[tuple[float, int]] = field(default_factory=list)
    peak: dict[int, float] = field(default_factory=dict)  # pid: VmHWM MiB, last seen


async def sample(stack: SoakStack, log: Log, samples: Samples, until: float, every: float) -> None:
    conn = await asyncpg.connect(dsn(stack.pg_url, "postgres"), timeout=10)
    try:
        while log.now() < until:
            t = log.now()
            for index, proc in enumerate(list(stack.gateways)):
                rss = _vm(proc.pid, "VmRSS")
                if rss is not None:
                    samples.rss.append((t, index, proc.pid, rss))
                hwm = _vm(proc.pid, "VmHWM")
                if hwm is not None:
                    samples.peak[proc.pid] = hwm
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", stack.db_name
            )
            samples.pg.append((t, int(count)))
            await asyncio.sleep(every)
    finally:
        await conn.close()


def _vm(pid: int, field_name: str) -> float | None:
    """A ``/proc/PID/status`` size in MiB (None when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
