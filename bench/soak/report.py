"""The soak's results: per-minute tables in markdown (for bench/RESULTS.md) and a PNG plot of
p99 and RSS over time. Percentiles are of answered requests (any result but a lost
connection); throughput counts the successes (``ok`` and refusals the client asked for)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench.soak.answers import SERVER_FAULTS, Outcome
from bench.soak.checks import Fault, episodes, recovery
from bench.soak.faults import Samples

OPS = (
    "login",
    "viewer",
    "refresh",
    "refresh (2 tabs)",
    "bindUnionId",
    "bindPhoneNumber",
    "registerWithPassword",
    "loginWithPassword",
    "loginWithPassword (wrong)",
    "partner lookup",
)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def by_minute(outcomes: Sequence[Outcome]) -> dict[int, dict[str, list[float]]]:
    minutes: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        if o.result not in ("lost", "refused"):
            minutes[int(o.t // 60)][o.op].append(o.latency)
    return minutes


def operations_table(outcomes: Sequence[Outcome], seconds: float) -> list[str]:
    ok: Counter[str] = Counter()
    errors: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes:
        if o.result in ("ok", "expected"):
            ok[o.op] += 1
        else:
            errors[o.op][o.result] += 1
    lines = [
        "| operation | successes | per second | p50 | p99 | errors by code |",
        "|---|---|---|---|---|---|",
    ]
    for op in sorted({o.op for o in outcomes}, key=lambda op: (op not in OPS, op)):
        latencies = [o.latency for o in outcomes if o.op == op and o.result != "lost"]
        errs = ", ".join(f"{code} {n}" for code, n in errors[op].most_common()) or "none"
        p50, p99 = (1000 * percentile(latencies, q) for q in (50, 99))
        lines.append(
            f"| {op} | {ok[op]} | {ok[op] / seconds:.1f} | {p50:.0f} ms | {p99:.0f} ms | {errs} |"
        )
    return lines


def minutes_table(
    outcomes: Sequence[Outcome], samples: Samples, faults: Sequence[Fault]
) -> list[str]:
    """Per minute: p50/p99 (ms) of the main operations, 5xx, RSS per gateway, PG connections."""
    minutes = by_minute(outcomes)
    shown = ("login", "viewer", "refresh", "bindPhoneNumber", "loginWithPassword", "partner lookup")
    gateways = sorted({index for _, index, _, _ in samples.rss})
    head = [
        "min",
        *(f"{op} p50/p99" for op in shown),
        "5xx",
        *(f"RSS gw{i}" for i in gateways),
        "PG conns",
        "faults",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for minute in sorted(minutes):
        row = [str(minute)]
        for op in shown:
            values = minutes[minute].get(op, [])
            row.append(
                f"{1000 * percentile(values, 50):.0f}/{1000 * percentile(values, 99):.0f}"
                if values
                else "-"
            )
        row.append(
            str(sum(1 for o in outcomes if int(o.t // 60) == minute and o.result in SERVER_FAULTS))
        )
        for index in gateways:
            rss = [m for t, i, _, m in samples.rss if i == index and int(t // 60) == minute]
            row.append(f"{max(rss):.0f} MiB" if rss else "-")
        pg = [n for t, n in samples.pg if int(t // 60) == minute]
        row.append(str(max(pg)) if pg else "-")
        row.append(", ".join(f.name for f in faults if int(f.start // 60) == minute) or "")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def faults_table(outcomes: Sequence[Outcome], faults: Sequence[Fault]) -> list[str]:
    lines = [
        "| fault | at | lasted | what happened | recovery per operation (s after its end) |",
        "|---|---|---|---|---|",
    ]
    for fault, until in episodes(faults):
        rec = recovery(outcomes, fault, until)
        slowest = ", ".join(f"{op} {s:.1f}" for op, s in sorted(rec.items(), key=lambda kv: -kv[1]))
        lasted = fault.end - fault.start
        lines.append(
            f"| {fault.name} | {fault.start:.0f} s | {lasted:.1f} s | {fault.detail} | {slowest} |"
        )
    return lines


def memory_line(samples: Samples, killed: set[int]) -> str:
    """The never-killed process: RSS at minute 1 and at the end; peaks (VmHWM) of all."""
    survivors = sorted({i for _, i, _, _ in samples.rss} - killed)
    parts = []
    for index in survivors:
        series = [(t, m) for t, i, _, m in samples.rss if i == index and t >= 60]
        if len(series) >= 2:
            first, last = series[0][1], series[-1][1]
            growth = 100 * (last / first - 1)
            parts.append(
                f"gw{index} (never killed): {first:.0f} MiB at minute 1, {last:.0f} MiB at the "
                f"end ({growth:+.1f}%)"
            )
    peaks = ", ".join(f"pid {pid} {mib:.0f} MiB" for pid, mib in samples.peak.items())
    grown = "; ".join(parts) or "no growth figure (the run ends before its second minute)"
    return f"{grown}. Peak RSS (VmHWM): {peaks}."


def plot(
    outcomes: Sequence[Outcome], samples: Samples, faults: Sequence[Fault], path: Path
) -> None:
    """p99 per 10 s of the main operations, and RSS per gateway, against time; faults shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    buckets: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        if o.result not in ("lost", "refused"):
            buckets[o.op][int(o.t // 10)].append(o.latency)
    for op in ("login", "viewer", "refresh", "bindPhoneNumber", "loginWithPassword"):
        series = sorted(buckets[op].items())
        if series:
            top.plot(
                [10 * b + 5 for b, _ in series],
                [1000 * percentile(v, 99) for _, v in series],
                label=op,
            )
    top.set_yscale("log")
    top.set_ylabel("p99 per 10 s (ms)")
    top.legend(fontsize=8, loc="upper left")
    for index in sorted({i for _, i, _, _ in samples.rss}):
        points = [(t, m) for t, i, _, m in samples.rss if i == index]
        bottom.plot([t for t, _ in points], [m for _, m in points], label=f"gateway {index}")
    bottom.set_ylabel("RSS (MiB)")
    bottom.set_xlabel("seconds into the soak")
    bottom.legend(fontsize=8, loc="upper left")
    for fault in faults:
        for axis in (top, bottom):
            axis.axvspan(fault.start, max(fault.end, fault.start + 2), color="red", alpha=0.15)
        top.annotate(
            fault.name, (fault.start, 1), xycoords=("data", "axes fraction"), fontsize=8, va="top"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
