"""What a run was asked to do (``Options``) and what one database's part of it keeps (``Section``).

Both are read by the stack, the measurements, the rows and the report; they live apart from the
command line so that none of those modules has to import ``bench.run`` (which imports them all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import procs
from bench.loadgen import Stats


@dataclass
class Options:
    """The command line, parsed: see bench/README.md for each flag."""

    dbs: list[str]
    duration: float
    quick: bool
    connections: int
    loadgen_procs: int
    use_wrk: bool
    pg_url: str
    latency_ms: float
    latency_clients: int
    profile_dir: Path | None
    gateway_env: dict[str, str]
    results: Path | None
    keep: bool
    only: set[str] | None = None
    reference_paths: bool = False

    @property
    def mode(self) -> str:
        """The results block this run replaces: ``quick`` or ``default``, and ``-reference``
        when the gateway ran with ``[performance] fast_paths = false``."""
        return ("quick" if self.quick else "default") + (
            "-reference" if self.reference_paths else ""
        )

    @property
    def users(self) -> int:
        """Returning users to set up: fewer in quick mode, where the windows are short."""
        return 200 if self.quick else 500

    @property
    def warm_seconds(self) -> float:
        """Load before a measured window opens, so that the first slow answers are not counted."""
        return 1.0 if self.quick else 2.0


@dataclass
class Section:
    """What one database's part of the run keeps: servers, users, tokens."""

    db: str
    url: str
    env: dict[str, str]
    gateway: procs.Proc | None = None
    reference: procs.Proc | None = None
    access_token: str = ""
    refresh_tokens: list[str] = field(default_factory=list)
    passwords: list[tuple[str, str]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    rates: dict[str, Stats] = field(default_factory=dict)
