"""Benchmark the gateway against references measured in the same run, on the same machine.

    .venv/bin/python -m bench [--db sqlite|postgres|both] [--duration S] [--quick]

See bench/README.md for what each row means. Everything runs on loopback; every process the
harness starts is stopped when it ends (also on Ctrl-C or an error), and its PostgreSQL
database (``gateway_bench_*``) is dropped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import loadgen, procs
from bench import profile as pyspy
from bench.measure import Meter, Row
from bench.options import Options, Section
from bench.report import loadavg, report, table, write_results
from bench.scenarios import Scenarios
from bench.stack import Stack

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"


# -- the run ---------------------------------------------------------------------------------


def run(opts: Options, stack: Stack, scenarios: Scenarios) -> None:
    """The shared servers, then every database in turn (each on a fresh database)."""
    stack.start()
    for db in opts.dbs:
        with stack.database(db) as url:
            section(opts, stack, scenarios, Section(db, url, {}))


def section(opts: Options, stack: Stack, scenarios: Scenarios, s: Section) -> None:
    """One database: migrate, serve, set up users, then the rows ``--only`` leaves in.

    The reference login is stopped once the login rows no longer need it (before viewer, even
    when ``--only`` skips the login rows); scale is a PostgreSQL-only row (bench/README.md).
    """
    assert stack.emulator is not None
    s.env = stack.gateway_env(s.url, stack.emulator)
    stack.migrate(s.env)
    s.gateway = stack.start_gateway(f"gateway-{s.db}", s.env)
    s.reference = stack.start_reference(s)
    print(f"[{s.db}] gateway pid {s.gateway.pid} on :{s.gateway.port}; setting up users")
    scenarios.setup(s)
    for key, step in scenarios.steps():
        if key == "viewer":
            stack.stop(s.reference)
        if key == "scale" and s.db != "postgres":
            continue
        if opts.only is None or key in opts.only:
            step(s)
    stack.stop(s.gateway)


def measure_rows(opts: Options) -> tuple[list[Row], list[str], bool]:
    """The rows, the PostgreSQL version and whether the run finished.

    Every process started is stopped here whatever happens (errors, Ctrl-C, SIGTERM); the
    temporary directory is kept when something went wrong, for its logs.
    """
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    processes = procs.Processes(tmp)
    stack = Stack(opts, tmp, processes)
    meter = Meter(opts)
    pg_versions: list[str] = []
    ok = False
    try:
        if "postgres" in opts.dbs:
            pg_versions = [procs.server_version(opts.pg_url)]
        run(opts, stack, Scenarios(opts, stack, meter))
        ok = True
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process the benchmark started", file=sys.stderr)
    finally:
        processes.close()
        keep = opts.keep or not ok or any(r.problem for r in meter.rows)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs and files kept in {tmp}", file=sys.stderr)
    return meter.rows, pg_versions, ok


# -- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    """The flags, as bench/README.md documents them."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--duration", type=float, help="seconds per measurement (default 10, quick 3)")
    p.add_argument("--quick", action="store_true", help="a few seconds per measurement")
    p.add_argument("--connections", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--loadgen-procs", type=int, default=1, help="Python generator processes")
    p.add_argument("--no-wrk", action="store_true", help="use the Python generator for all rows")
    p.add_argument("--pg-url", default=DEFAULT_PG, help=f"PostgreSQL server (default {DEFAULT_PG})")
    p.add_argument("--latency-ms", type=float, default=100.0, help="slow upstream (default 100)")
    p.add_argument("--latency-clients", type=int, default=500, help="clients for that row")
    p.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the gateway into DIR")
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the gateway processes (e.g. GATEWAY_LOG_LEVEL=WARNING)",
    )
    p.add_argument(
        "--reference-paths",
        action="store_true",
        help="run the gateway with [performance] fast_paths = false (the transactional paths)",
    )
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    p.add_argument("--no-results", action="store_true", help="do not write the results file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    p.add_argument(
        "--only",
        help="comma-separated rows: floor,login,merge,viewer,trusted,password,refresh,eventloop,"
        "memory,latency,scale (default: all)",
    )
    return p


def parse(argv: Sequence[str] | None) -> Options:
    """The command line as ``Options``; wrk and py-spy are looked for here, once."""
    p = _parser()
    a = p.parse_args(argv)
    use_wrk = not a.no_wrk and loadgen.wrk_path() is not None
    if not use_wrk and not a.no_wrk:
        print(
            "wrk not found: the Python generator drives every row "
            "(install wrk for the fixed-body rows: apt-get install -y wrk)"
        )
    if a.profile is not None:
        if pyspy.py_spy_path() is None:
            p.error("--profile needs py-spy (pip install py-spy)")
        a.profile.mkdir(parents=True, exist_ok=True)
    return Options(
        dbs=["sqlite", "postgres"] if a.db == "both" else [a.db],
        duration=a.duration or (3.0 if a.quick else 10.0),
        quick=a.quick,
        connections=a.connections,
        loadgen_procs=a.loadgen_procs,
        use_wrk=use_wrk,
        pg_url=a.pg_url,
        latency_ms=a.latency_ms,
        latency_clients=a.latency_clients,
        profile_dir=a.profile,
        gateway_env=_gateway_env(p, a.gateway_env),
        results=None if a.no_results else a.results,
        keep=a.keep,
        only=set(a.only.split(",")) if a.only else None,
        reference_paths=a.reference_paths,
    )


def _gateway_env(p: argparse.ArgumentParser, items: Sequence[str]) -> dict[str, str]:
    """``--gateway-env NAME=VALUE`` flags as a dict; anything else is a usage error."""
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            p.error(f"--gateway-env wants NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def _check_postgres(opts: Options) -> bool:
    """False when PostgreSQL alone was asked for and does not answer; ``both`` falls back."""
    if "postgres" not in opts.dbs:
        return True
    why = procs.postgres_error(opts.pg_url)
    if why is None:
        return True
    if len(opts.dbs) == 1:
        print(f"PostgreSQL at {opts.pg_url} does not answer: {why}", file=sys.stderr)
        return False
    print(f"PostgreSQL at {opts.pg_url} does not answer ({why}): SQLite only")
    opts.dbs = ["sqlite"]
    return True


def _terminate(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM (and SIGINT) as KeyboardInterrupt, so that ``measure_rows`` cleans up either way."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench``: 0 when the run finished, 2 without the PostgreSQL asked for, 130
    when interrupted (a failing row is in the table and RESULTS.md, not in the exit status)."""
    opts = parse(argv)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    if not _check_postgres(opts):
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)  # also when started in the background (SIG_IGN)
    load_before = loadavg()
    if load_before > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load_before:.1f} before the run: the CPUs are busy")
    started = datetime.now(UTC)
    rows, pg_versions, ok = measure_rows(opts)
    if rows:
        print()
        print(table(rows, markdown=False))
    if not ok:
        return 130
    text = report(rows, pg_versions, opts, command.strip(), started, load_before)
    if opts.results is not None:
        write_results(opts.results, opts.mode, text)
        print(f"\nwrote {opts.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
