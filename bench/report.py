"""The results: the table printed at the end, and the run's block in RESULTS.md.

Figures mean little without the machine, the gateway's commit and how busy the CPUs were, so
the markdown report carries all three; ``write_results`` replaces only its own mode's block.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from bench.measure import Row
from bench.options import Options
from bench.stack import REPO


def machine() -> str:
    """CPUs, memory, kernel and Python: enough to compare runs from different machines."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem} RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _git(*args: str) -> str:
    """git's output in the repository, or "" when there is no git or no checkout."""
    git_path = shutil.which("git")
    if git_path is None:
        return ""
    out = subprocess.run(  # noqa: S603 - our own argv
        [git_path, *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=10
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def gateway_revision() -> str:
    """The commit measured, flagged when gateway/ had uncommitted changes (then it is not)."""
    head = _git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "gateway")
    return head + (" with uncommitted changes in gateway/" if dirty else "")


def loadavg() -> float:
    """The 1-minute load average: a busy machine makes absolute rates noisy."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def table(rows: Sequence[Row], markdown: bool) -> str:
    """The rows as a markdown table, or as aligned text for the terminal."""
    header = ["db", "row", "measured", "target", "result", "absolute"]
    body = [
        [
            r.db,
            r.name,
            r.shown,
            str(r.target) if r.target else "-",
            r.result,
            r.problem or r.detail,
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in body]
        return "\n".join(lines)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(5)]
    out = []
    for line in [header, *body]:
        cells = [line[i].ljust(widths[i]) for i in range(5)]
        out.append("  ".join(cells) + "  " + line[5])
    return "\n".join(out)


def report(
    rows: Sequence[Row],
    pg_versions: Sequence[str],
    opts: Options,
    command: str,
    started: datetime,
    load_before: float,
) -> str:
    """The markdown block of one run: how it ran, on what, the table, and what missed."""
    lines = _header(pg_versions, opts, command, started, load_before)
    lines += ["", table(rows, markdown=True), ""]
    lines += _sizing(rows)
    lines += _misses(rows)
    return "\n".join(lines)


KEYCLOAK_PER_VCPU = {"loginWithPassword": 15.0, "refreshToken": 120.0}
"""Keycloak's published sizing (about 15 password logins and 120 refreshes per second per
vCPU): what users compare an identity server with."""


def _sizing(rows: Sequence[Row]) -> list[str]:
    """Absolute rates per core beside Keycloak's published sizing."""
    sized = [
        (r, kind)
        for r in rows
        for kind in KEYCLOAK_PER_VCPU
        if r.per_core is not None and r.name.startswith(kind)
    ]
    if not sized:
        return []
    lines = [
        "Per core, beside Keycloak's published sizing (different machines, hashing parameters "
        "and workloads: an order of magnitude, not a contest):",
        "",
        "| db | rate | this gateway, per core | Keycloak, per vCPU |",
        "|---|---|---|---|",
    ]
    for r, kind in sized:
        lines.append(f"| {r.db} | {kind} | {r.per_core:.0f}/s | ~{KEYCLOAK_PER_VCPU[kind]:.0f}/s |")
    return [*lines, ""]


def _header(
    pg_versions: Sequence[str], opts: Options, command: str, started: datetime, load_before: float
) -> list[str]:
    """When, how, on which machine and commit, with which load generators and how busy."""
    lines = [
        f"Run {started:%Y-%m-%d %H:%M} UTC, mode **{opts.mode}** "
        f"({opts.duration:g} s per measurement), `{command}`",
        "",
        f"- Machine: {machine()}",
        f"- Gateway: commit {gateway_revision()}",
        f"- Load: {'wrk (fixed bodies) and ' if opts.use_wrk else ''}the harness's Python "
        f"generator ({opts.loadgen_procs} process; codes, refresh chains, probes), "
        f"{opts.connections} connections unless the row says otherwise",
    ]
    if pg_versions:
        lines.append(f"- PostgreSQL: {pg_versions[0]}")
    lines.append(
        f"- 1-minute load average {load_before:.1f} before the run, {loadavg():.1f} after "
        "(above ~0.5 before, something else was using the CPUs: absolute rates suffer most, "
        "ratios of adjacent measurements less)"
    )
    return lines


def _misses(rows: Sequence[Row]) -> list[str]:
    """The rows that miss, each with why and (when profiled) what the profile blames."""
    misses = [r for r in rows if r.result in ("MISS", "ERROR")]
    if not misses:
        return ["Every row meets its target."]
    lines = ["Rows that miss their target:"]
    for r in misses:
        why = r.problem or r.detail
        lines.append(f"- {r.db} / {r.name}: {r.shown} vs {r.target} ({why})")
        if r.profile:
            lines.append(f"  - profile: {r.profile.replace(chr(10), ' ')}")
    return lines


def write_results(path: Path, mode: str, text: str) -> None:
    """Replace this mode's block in ``path`` (or add it); text outside the markers is kept."""
    begin, end = f"<!-- bench:{mode}:begin -->", f"<!-- bench:{mode}:end -->"
    block = f"{begin}\n{text}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        title = (
            ""
            if old
            else (
                "# Benchmark results\n\nWritten by `python -m bench` (see README.md). The harness "
                "rewrites only the blocks between its markers: notes outside them are kept.\n\n"
            )
        )
        new = (old.rstrip() + "\n\n" if old else title) + f"## Latest {mode} run\n\n{block}\n"
    path.write_text(new, encoding="utf-8")
