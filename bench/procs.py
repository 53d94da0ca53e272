"""The processes the benchmark starts, and everything needed to stop them all, always.

Each server runs in its own session (process group), its output in a log file; stopping is
SIGTERM to the group, then SIGKILL. ``Processes.close`` stops whatever is still running, so
the harness calls it from ``finally`` (errors, Ctrl-C and SIGTERM alike).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._live: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], port: int, cwd: Path) -> Proc:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(  # noqa: S603 - our own argv
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, port, log)
        self._live.append(proc)
        return proc

    def wait_ready(self, proc: Proc, path: str, timeout: float = 60.0) -> None:
        """Poll ``GET path`` until it answers 200; fail with the log tail if the process died."""

        def answers() -> bool:
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(HOST, proc.port, timeout=2)
                try:
                    conn.request("GET", path)
                    return conn.getresponse().status == 200
                finally:
                    conn.close()
            return False

        _poll(proc, answers, timeout, "not ready")

    def wait_logged(self, proc: Proc, marker: str, count: int, timeout: float = 60.0) -> None:
        """Poll ``proc``'s log until ``marker`` appears ``count`` times (one per worker).

        ``/readyz`` answers as soon as one worker serves: connections opened before the others
        listen all go to that one and stay there (keep-alive), so a multi-worker row would
        measure one process."""

        def logged() -> bool:
            with contextlib.suppress(OSError):
                text = proc.log.read_text(encoding="utf-8", errors="replace")
                return text.count(marker) >= count
            return False

        _poll(proc, logged, timeout, f"{count} x {marker!r} not logged")

    def stop(self, proc: Proc, grace: float = 15.0) -> None:
        if proc in self._live:
            self._live.remove(proc)
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(grace)
        # the group may hold workers that outlive their parent: make sure it is gone
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(5)

    def forget(self, proc: Proc) -> None:
        """No longer ours to stop (it was killed on purpose)."""
        if proc in self._live:
            self._live.remove(proc)

    def close(self) -> None:
        for proc in reversed(list(self._live)):
            self.stop(proc, grace=5.0)


def run_checked(argv: list[str], env: dict[str, str], cwd: Path, what: str) -> str:
    out = subprocess.run(  # noqa: S603 - our own argv
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


# -- memory ----------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
    return found


def _status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _poll(proc: Proc, done: Callable[[], bool], timeout: float, failure: str) -> None:
    """Every 0.1 s until ``done()``; fail with the log tail if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}"
            )
        if done():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name}: {failure} after {timeout:.0f}s:\n{proc.log_tail()}")


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants so far (0 for what has gone)."""
    total = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # the fields after the command name, which may hold spaces: utime, stime are 14, 15
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


class CpuSampler:
    """CPU time of a server, sampled every ``interval`` seconds from a thread, so that the CPU
    of a window known only afterwards (a load's measured part, after its ramp) can be read."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._samples.append((time.monotonic(), cpu_seconds(self._pid)))
            if self._stop.wait(self._interval):
                return

    def between(self, start: float, end: float) -> float:
        """CPU seconds spent between two ``time.monotonic()`` instants (nearest samples)."""
        if not self._samples:
            return 0.0

        def at(t: float) -> float:
            return min(self._samples, key=lambda sample: abs(sample[0] - t))[1]

        return at(end) - at(start)


def peak_rss_mib(pid: int) -> dict[int, float]:
    """VmHWM (peak resident set) of a process and its descendants that run Python code.

    uvicorn's multiprocessing helpers (the resource tracker) are left out: they serve no request.
    """
    peaks: dict[int, float] = {}
    for p in _descendants(pid):
        if "resource_tracker" in _cmdline(p):
            continue
        kib = _status_kib(p, "VmHWM")
        if kib is not None:
            peaks[p] = kib / 1024
    return peaks


# -- PostgreSQL ------------------------------------------------------------------------------


def _asyncpg_dsn(base_url: str, database: str) -> str:
    url = base_url.replace("postgresql+asyncpg://", "postgresql://", 1).rstrip("/")
    return f"{url}/{database}"


async def _admin(base_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(base_url, "postgres"), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postgres_error(base_url: str) -> str | None:
    """None when PostgreSQL answers at ``base_url``, else why not."""
    try:
        asyncio.run(_admin(base_url, "SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def server_version(base_url: str) -> str:
    """The server's version, for the report ("unknown version" when it cannot say)."""

    async def query() -> str:
        import asyncpg

        conn = await asyncpg.connect(_asyncpg_dsn(base_url, "postgres"), timeout=5)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    with contextlib.suppress(Exception):
        return asyncio.run(query())
    return "unknown version"


def create_database(base_url: str, name: str) -> str:
    if not name.startswith("gateway_bench_"):
        raise ValueError("the benchmark only creates and drops gateway_bench_* databases")
    asyncio.run(_admin(base_url, f'CREATE DATABASE "{name}"'))
    return f"{base_url.rstrip('/')}/{name}"


def drop_database(base_url: str, name: str) -> None:
    if not name.startswith("gateway_bench_"):
        raise ValueError("the benchmark only creates and drops gateway_bench_* databases")
    asyncio.run(_admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
