"""The comparison table: one row per metric, one column per way of streaming.

Each cell is the measured value, its ratio to direct (or to nginx, where a
direct connection has no process in the middle to measure), and ✓/✗ where the
metric has a target for that column. A value that could not be measured is "–".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.scenarios import Plan

Results = dict[str, dict[str, Any]]  # column -> metric -> value
COLUMNS = {"direct": "direct", "nginx": "nginx", "memory": "Sluice memory",
           "redis": "Sluice REDIS_URL"}
SLUICE = ("memory", "redis")
LABEL_WIDTH, CELL_WIDTH = 46, 23


@dataclass
class Target:
    """A goal per column: `checks` maps a column to the test its value must pass."""

    text: str
    checks: dict[str, Callable[[float], bool]]


def at_most(limit: float, *columns: str) -> dict[str, Callable[[float], bool]]:
    return {column: (lambda v: v <= limit) for column in columns or SLUICE}


def at_least(limit: float, *columns: str) -> dict[str, Callable[[float], bool]]:
    return {column: (lambda v: v >= limit) for column in columns or SLUICE}


@dataclass
class Row:
    """One metric: how to get its value per column, how to print it, what it must meet."""

    label: str
    value: Callable[[Results, str], float | None]
    fmt: str = "{:,.2f}"
    ratio_to: str | None = None  # "direct" or "nginx"
    target: Target | None = None
    only: tuple[str, ...] = tuple(COLUMNS)
    suffix: Callable[[Results, str], str] = field(default=lambda r, c: "")
    # False when the run behind the value was cut short: a pass is then unverified ("?").
    complete: Callable[[Results, str], bool] = field(default=lambda r, c: True)


def metric(name: str) -> Callable[[Results, str], float | None]:
    return lambda results, column: results.get(column, {}).get(name)


def added_ttft(results: Results, column: str) -> float | None:
    own, direct = metric("ttft_ms")(results, column), metric("ttft_ms")(results, "direct")
    return None if own is None or direct is None else own - direct


def sluice_plus_redis(results: Results, column: str) -> float | None:
    own, redis = metric("cpu_per_1k")(results, column), metric("redis_cpu_per_1k")(results,
                                                                                   column)
    return None if own is None or redis is None else own + redis


def redis_clients(results: Results, column: str) -> float | None:
    values = [v for v in (metric("redis_clients")(results, column),
                          metric("held_redis_clients")(results, column)) if v is not None]
    return max(values) if values else None


def failed_share(streams: int) -> Callable[[Results, str], str]:
    """The failed count's share of all streams, e.g. " (97.7%)"."""
    def suffix(results: Results, column: str) -> str:
        failed = metric("burst_failed")(results, column)
        return f" ({failed / streams:.1%})" if failed and streams else ""
    return suffix


def all_of(name: str, planned: int) -> Callable[[Results, str], bool]:
    """Whether a run measured every stream it planned to."""
    def complete(results: Results, column: str) -> bool:
        done = metric(name)(results, column)
        return done is None or done >= planned
    return complete


def fewer(name: str, planned: int) -> Callable[[Results, str], str]:
    """Adds " (n=...)" when a run measured fewer streams than planned (cut short, failed)."""
    def suffix(results: Results, column: str) -> str:
        done = metric(name)(results, column)
        return f" (n={done:,})" if done is not None and done < planned else ""
    return suffix


def rows(plan: Plan) -> list[Row]:
    """The table's rows, in the order of the issue's table, sized by `plan`."""
    burst = f"{plan.burst_streams} streams starting together"
    return [
        Row("TTFT, 1 stream, median (ms)", metric("ttft_ms"), ratio_to="direct"),
        Row("added TTFT, 1 stream (ms)", added_ttft, "{:+,.2f}", only=("nginx", *SLUICE),
            target=Target("≤ 5 ms", at_most(5))),
        Row("chunks/s through one worker", metric("chunks_per_s"), "{:,.0f}", "direct",
            Target("≥ 20,000 memory, ≥ 10,000 Redis",
                   {**at_least(20_000, "memory"), **at_least(10_000, "redis")})),
        Row("  CPU busy of nginx/worker in that run (%)", metric("busy_pct"), "{:.0f}",
            only=("nginx", *SLUICE)),
        Row("CPU s per 1,000 chunks, nginx/worker", metric("cpu_per_1k"), "{:.4f}", "nginx",
            Target("≤ 0.05 memory", at_most(0.05, "memory")), only=("nginx", *SLUICE)),
        Row("CPU s per 1,000 chunks, redis-server", metric("redis_cpu_per_1k"), "{:.4f}",
            only=("redis",)),
        Row("CPU s per 1,000 chunks, Sluice + Redis", sluice_plus_redis, "{:.4f}", "nginx",
            Target("≤ 0.15 Redis", at_most(0.15, "redis")), only=("redis",)),
        Row(f"{burst}: failed", metric("burst_failed"), "{:.0f}",
            target=Target("0", at_most(0)), suffix=failed_share(plan.burst_streams)),
        Row(f"{burst}: TTFT p99 (ms)", metric("burst_p99_ms"), "{:,.1f}", "direct",
            Target("≤ 300 ms", at_most(300))),
        Row(f"{burst}: TTFT p50 (ms)", metric("burst_p50_ms"), "{:,.1f}", "direct"),
        Row("Redis connections of the worker (peak)", redis_clients, "{:.0f}",
            target=Target("≤ 10", at_most(10, "redis")), only=("redis",)),
        Row(f"RSS per open stream (KiB, {plan.held_streams} held)",
            metric("rss_per_stream_kib"), "{:.1f}", "nginx",
            Target("≤ 64 KiB", at_most(64)), only=("nginx", *SLUICE),
            suffix=fewer("held_opened", plan.held_streams),
            complete=all_of("held_opened", plan.held_streams)),
        Row(f"RSS after {plan.churn_streams:,} streams vs first {plan.churn_first} (%)",
            metric("churn_growth_pct"), "{:+.1f}",
            target=Target("≤ +20%", at_most(20)), only=SLUICE,
            suffix=fewer("churn_done", plan.churn_streams),
            complete=all_of("churn_done", plan.churn_streams)),
    ]


def cell(row: Row, results: Results, column: str) -> tuple[str, bool | None]:
    """The text of one cell, and whether it meets its target: True, False, or None
    (no target here). A missing value misses its target; a pass on a run cut short
    is shown as "?" and counts as not met."""
    check = row.target.checks.get(column) if row.target else None
    value = row.value(results, column) if column in row.only else None
    if value is None:
        if column not in row.only or column not in results:
            return "", None
        return ("– ✗", False) if check else ("–", None)
    text = row.fmt.format(value) + row.suffix(results, column)
    base = row.value(results, row.ratio_to) if row.ratio_to and row.ratio_to != column else None
    if base:
        ratio = value / base
        text += f" ×{ratio:,.0f}" if ratio >= 100 else f" ×{ratio:.3g}"
    if check is None:
        return text, None
    if not check(value):
        return text + " ✗", False
    return (text + " ✓", True) if row.complete(results, column) else (text + " ?", False)


def table(results: Results, plan: Plan) -> tuple[str, int, int]:
    """The table as text, with how many targets were met out of how many checked."""
    columns = [c for c in COLUMNS if c in results]
    lines = ["".ljust(LABEL_WIDTH) + "".join(COLUMNS[c].rjust(CELL_WIDTH) for c in columns)
             + "   target"]
    met = checked = 0
    for row in rows(plan):
        texts = []
        for column in columns:
            text, ok = cell(row, results, column)
            texts.append(text.rjust(CELL_WIDTH))
            if ok is not None:
                checked += 1
                met += ok
        target = row.target.text if row.target else ""
        lines.append(row.label.ljust(LABEL_WIDTH) + "".join(texts) + "   " + target)
    return "\n".join(line.rstrip() for line in lines), met, checked


def findings(results: Results, plan: Plan) -> list[str]:
    """What the table cannot show: why streams failed, and runs cut short."""
    lines = []
    for column, got in results.items():
        failed = {k: got.get(k) for k in ("warmup_failed", "ttft_failed", "tput_failed",
                                           "held_failed", "churn_failed") if got.get(k)}
        if failed:
            lines.append(f"{column}: other failed streams: "
                         + ", ".join(f"{k.split('_')[0]} {v}" for k, v in failed.items()))
        for run in ("burst", "held", "churn"):
            if got.get(f"{run}_errors"):
                reasons = ", ".join(f"{reason} x{count}" for reason, count
                                    in sorted(got[f"{run}_errors"].items(), key=lambda i: -i[1]))
                lines.append(f"{column}: why {run} streams failed: {reasons}")
        opened = got.get("held_opened")
        if opened is not None and opened < plan.held_streams:
            lines.append(f"{column}: only {opened} of {plan.held_streams} held streams got "
                         "their first token (RSS per stream is over those)")
        done = got.get("churn_done")
        if done is not None:
            first, last = got.get("churn_rss_first"), got.get("churn_rss_last")
            lines.append(f"{column}: worker RSS {_mib(first)} after {plan.churn_first} streams, "
                         f"{_mib(last)} after {done:,}"
                         + ("" if done >= plan.churn_streams else
                            f" (the time limit stopped it short of {plan.churn_streams:,})"))
    return lines


def _mib(kib: float | None) -> str:
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"
