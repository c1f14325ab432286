"""The measurements, each run the same way against direct, nginx and Sluice.

A `Subject` is what the load generator talks to plus the processes whose cost
is measured. Every function returns plain numbers (None when unmeasurable), and
records failures as counts: a broken server makes a bad row, never a crash.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import procs
from bench.targets import Loadgen, Upstream

Metrics = dict[str, Any]
SETTLE = 1.0  # seconds before reading memory, so finished work is freed
MAX_BATCHES = 200  # of one throughput sample, however fast the subject is


@dataclass
class Subject:
    """Something streams go through: `kind` is "openai" (direct, nginx) or "sluice"."""

    name: str
    kind: str
    port: int
    cost_pids: Callable[[], list[int]] = list  # whose CPU is the proxy's cost
    rss_pid: Callable[[], int | None] = lambda: None
    redis_pid: int | None = None  # a Redis server whose CPU counts too
    redis_clients: Callable[[], int | None] | None = None  # the worker's Redis clients
    restarted: Callable[[], bool] = lambda: False
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Sizes and limits of one comparison (see bench/compare.py for the options)."""

    repeats: int
    ttft_streams: int
    tput_streams: int
    tput_chunks: int
    tput_seconds: float
    burst_streams: int
    burst_repeats: int
    burst_model: str
    held_streams: int
    churn_streams: int
    churn_first: int
    churn_concurrency: int
    churn_seconds: float
    deadline: float


def run(lg: Loadgen, subject: Subject, model: str, streams: int, concurrency: int,
        deadline: float, **extra: Any) -> Metrics:
    """One batch of streams; Sluice threads are made first, outside the measurement."""
    if subject.kind == "sluice" and not extra.get("fresh_threads"):
        lg.ask({"cmd": "threads", "port": subject.port, "count": streams}, deadline)
    return lg.ask({"cmd": "run", "target": subject.kind, "port": subject.port, "model": model,
                   "streams": streams, "concurrency": concurrency, "deadline": deadline,
                   **extra}, deadline + 30)


def warm_up(lg: Loadgen, subject: Subject, plan: Plan) -> Metrics:
    """Some streams first, so pools, caches and imports are not measured."""
    result = run(lg, subject, "c5", 20, 10, plan.deadline)
    return {"warmup_failed": result["failed"]}


def single_stream_ttft(lg: Loadgen, subject: Subject, plan: Plan) -> Metrics:
    """Median TTFT of streams run one at a time: the latency a proxy adds when idle."""
    medians, failed = [], 0
    for _ in range(plan.repeats):
        result = run(lg, subject, "c5", plan.ttft_streams, 1, plan.deadline)
        failed += result["failed"]
        if result["ttfts"]:
            medians.append(statistics.median(result["ttfts"]) * 1000)
    return {"ttft_ms": statistics.median(medians) if medians else None, "ttft_failed": failed}


def throughput(lg: Loadgen, subject: Subject, plan: Plan) -> Metrics:
    """Chunks/s with gapless answers, and the CPU the proxy (and Redis) spent per chunk."""
    samples = [_throughput_sample(lg, subject, plan) for _ in range(plan.repeats)]
    valid = [s for s in samples if s["chunks"]]
    cpu_known = [s for s in valid if s["cpu"] is not None]
    redis_known = [s for s in valid if s["redis_cpu"] is not None]
    return {"chunks_per_s": _median([s["chunks"] / s["wall"] for s in valid]),
            "cpu_per_1k": _median([s["cpu"] / s["chunks"] * 1000 for s in cpu_known]),
            "busy_pct": _median([s["cpu"] / s["wall"] * 100 for s in cpu_known]),
            "redis_cpu_per_1k": _median([s["redis_cpu"] / s["chunks"] * 1000
                                         for s in redis_known]),
            "tput_failed": sum(s["failed"] for s in samples)}


def _throughput_sample(lg: Loadgen, subject: Subject, plan: Plan) -> Metrics:
    """Batches of gapless streams until `tput_seconds` of streaming: totals of one sample.
    CPU is read around each batch only, so making Sluice threads is not counted."""
    total: Metrics = {"chunks": 0, "wall": 0.0, "failed": 0, "cpu": 0.0,
                      "redis_cpu": 0.0 if subject.redis_pid else None}
    pids = subject.cost_pids()
    if not pids:
        total["cpu"] = None
    for _ in range(MAX_BATCHES):
        if subject.kind == "sluice":
            lg.ask({"cmd": "threads", "port": subject.port, "count": plan.tput_streams},
                   plan.deadline)
        cpu0, redis0 = procs.total_cpu(pids), _redis_cpu(subject)
        result = lg.ask({"cmd": "run", "target": subject.kind, "port": subject.port,
                         "model": f"c{plan.tput_chunks}", "streams": plan.tput_streams,
                         "concurrency": plan.tput_streams, "deadline": plan.deadline},
                        plan.deadline + 30)
        cpu1, redis1 = procs.total_cpu(pids), _redis_cpu(subject)
        total["chunks"] += result["chunks"]
        total["wall"] += result["wall"]
        total["failed"] += result["failed"]
        total["cpu"] = _add(total["cpu"], cpu0, cpu1)
        total["redis_cpu"] = _add(total["redis_cpu"], redis0, redis1)
        if total["wall"] >= plan.tput_seconds or not result["chunks"]:
            break
    return total


def _add(total: float | None, before: float | None, after: float | None) -> float | None:
    return None if total is None or before is None or after is None else total + after - before


def burst(lg: Loadgen, subject: Subject, plan: Plan) -> Metrics:
    """`burst_streams` streams sent at the same moment: failures and TTFT percentiles.
    Repeated `repeats` times where it is cheap (direct, nginx), `burst_repeats` on Sluice."""
    p99s, p50s, failed, errors, peak = [], [], [], {}, None
    for _ in range(plan.repeats if subject.kind == "openai" else plan.burst_repeats):
        with procs.PeakSampler(subject.redis_clients or (lambda: None)) as clients:
            result = run(lg, subject, plan.burst_model, plan.burst_streams,
                         plan.burst_streams, plan.deadline, together=True)
        peak = _max(peak, clients.peak)
        failed.append(result["failed"])
        errors = _merged(errors, result["errors"])
        if result["ttfts"]:
            p99s.append(percentile(result["ttfts"], 99) * 1000)
            p50s.append(percentile(result["ttfts"], 50) * 1000)
    return {"burst_failed": statistics.median(failed), "burst_p99_ms": _median(p99s),
            "burst_p50_ms": _median(p50s), "burst_errors": errors, "redis_clients": peak}


def held_memory(lg: Loadgen, subject: Subject, upstream: Upstream, plan: Plan) -> Metrics:
    """RSS growth per stream while `held_streams` streams wait after their first token."""
    procs.settle(SETTLE)
    pid = subject.rss_pid()
    before = procs.rss_kib(pid) if pid else None
    if subject.kind == "sluice":
        lg.ask({"cmd": "threads", "port": subject.port, "count": plan.held_streams},
               plan.deadline)
    with procs.PeakSampler(subject.redis_clients or (lambda: None)) as clients:
        try:
            lg.tell({"cmd": "run", "target": subject.kind, "port": subject.port,
                     "model": "c5-h", "streams": plan.held_streams,
                     "concurrency": plan.held_streams, "deadline": plan.deadline,
                     "idle": plan.deadline, "report_opened": True})
            opened = lg.answer(plan.deadline)["opened"]
            procs.settle(SETTLE)
            after = procs.rss_kib(pid) if pid else None
        finally:  # held answers never outlive the measurement, even a failed one
            upstream.release()
        result = lg.answer(plan.deadline + 30)
    per_stream = None
    if before is not None and after is not None and opened:
        per_stream = (after - before) / opened
    return {"held_opened": opened, "rss_per_stream_kib": per_stream,
            "held_failed": result["failed"], "held_errors": result["errors"],
            "held_redis_clients": clients.peak}


def churn(lg: Loadgen, subject: Subject, plan: Plan) -> Metrics:
    """RSS after the first `churn_first` streams and after `churn_streams` in all."""
    pid = subject.rss_pid()
    first = run(lg, subject, "c5", plan.churn_first, plan.churn_concurrency,
                plan.churn_seconds + plan.deadline, fresh_threads=True,
                start_within=plan.churn_seconds)
    procs.settle(SETTLE)
    rss_first = procs.rss_kib(pid) if pid else None
    rest = run(lg, subject, "c5", plan.churn_streams - plan.churn_first,
               plan.churn_concurrency, plan.churn_seconds + plan.deadline,
               fresh_threads=True, start_within=plan.churn_seconds)
    procs.settle(SETTLE)
    rss_last = procs.rss_kib(pid) if pid else None
    growth = None
    if rss_first and rss_last is not None:
        growth = (rss_last - rss_first) / rss_first * 100
    return {"churn_done": first["streams"] + rest["streams"], "churn_rss_first": rss_first,
            "churn_rss_last": rss_last, "churn_growth_pct": growth,
            "churn_failed": first["failed"] + rest["failed"],
            "churn_errors": _merged(first["errors"], rest["errors"])}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def _merged(*counts: dict[str, int]) -> dict[str, int]:
    """Failure reasons of several runs, counted together."""
    total: dict[str, int] = {}
    for count in counts:
        for reason, n in count.items():
            total[reason] = total.get(reason, 0) + n
    return total


def _redis_cpu(subject: Subject) -> float | None:
    return procs.cpu_seconds(subject.redis_pid) if subject.redis_pid else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
