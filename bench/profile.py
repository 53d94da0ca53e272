"""Optional py-spy sampling of the gateway during a measurement (``--profile DIR``).

Each measurement of the gateway gets a raw (collapsed stacks) file, and a summary: the share
of samples spent inside each library (inclusive) and the hottest leaf functions (self time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_SITE = re.compile(r"(?:site|dist)-packages/([A-Za-z0-9_]+)")
# libraries worth an inclusive share (the roots, uvicorn and asyncio, are in every stack)
_LIBRARIES = (
    "starlette",
    "strawberry",
    "graphql",
    "sqlalchemy",
    "sqlmodel",
    "aiosqlite",
    "asyncpg",
    "httpx",
    "httpcore",
    "joserfc",
    "cryptography",
    "argon2",
    "pydantic",
    "json",
    "logging",
)


def py_spy_path() -> str | None:
    """On PATH, or beside this Python (a venv that was not activated)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def start(pid: int, output: Path, duration: float) -> subprocess.Popen[bytes]:
    spy = py_spy_path()
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    argv = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(duration))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--subprocesses",
        "--nonblocking",
        "--gil",  # what holds the GIL: the event loop's work, not threads waiting
        "--output",
        str(output),
    ]
    return subprocess.Popen(  # noqa: S603 - our own argv
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _bucket(file: str) -> str:
    """The library (or gateway package) a frame's file belongs to."""
    match = _SITE.search(file)
    if match:
        return match.group(1)
    parts = Path(file).parts
    if "gateway" in parts[:-1]:
        rest = parts[parts.index("gateway") + 1 :]
        return "gateway." + rest[0].removesuffix(".py")
    if parts and parts[0] == "/":
        return Path(file).stem
    return parts[0].removesuffix(".py") if parts else "?"


def summarize(raw: Path, top: int = 10) -> str:
    """Self time per library, inclusive time in the main libraries, hottest functions."""
    inclusive: Counter[str] = Counter()
    self_lib: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_FRAME.match(f) for f in stack.split(";")]
        parsed = [(m.group("func"), m.group("file")) for m in frames if m]
        if not parsed:
            continue
        total += count
        buckets = [_bucket(file) for _, file in parsed]
        for bucket in set(buckets):
            if bucket in _LIBRARIES or (bucket.startswith("gateway.") and bucket != "gateway.cli"):
                inclusive[bucket] += count
        self_lib[buckets[-1]] += count
        leaves[f"{parsed[-1][0]} ({parsed[-1][1]})"] += count
    if not total:
        return "no samples"

    def shares(counter: Counter[str], n: int) -> str:
        return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in counter.most_common(n))

    return (
        f"{total} samples holding the GIL. self by library: {shares(self_lib, 8)}"
        f"\n  inclusive: {shares(inclusive, 10)}"
        f"\n  hottest: {shares(leaves, top)}"
    )
