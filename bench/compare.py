"""Sluice beside a direct connection and nginx, against the same fake upstream.

    make bench                                   # or: python -m bench.compare
    python -m bench.compare --quick              # about a minute, smaller numbers
    python -m bench.compare --modes memory --no-nginx --repeats 1

One gunicorn gevent worker (WEB_CONCURRENCY=1) in memory mode and in Redis mode
(a private redis-server); nginx runs the shipped deploy/nginx.conf proxying
straight to the fake upstream. Everything is on 127.0.0.1. The load generator
and the fake upstream are processes of their own, so only the worker's (and
Redis's) CPU is counted. Prints one table with the ratios and targets (✓/✗).
Exits 0 whatever was measured: missing targets is a result, not an error.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from bench import procs, report, scenarios
from bench.scenarios import Metrics, Plan, Subject
from bench.targets import Loadgen, Nginx, Sluice, Upstream
from tests.live_server import ROOT
from tests.services import RedisServer

FULL = {"repeats": 3, "ttft_streams": 20, "tput_streams": 10, "tput_chunks": 1000,
        "tput_seconds": 2.0, "burst_streams": 500, "burst_repeats": 1, "held_streams": 500,
        "churn_streams": 10_000, "churn_first": 500, "churn_concurrency": 50,
        "churn_seconds": 45.0, "deadline": 30.0}
QUICK = {"repeats": 1, "ttft_streams": 10, "tput_streams": 5, "tput_chunks": 1000,
         "tput_seconds": 1.0, "burst_streams": 200, "burst_repeats": 1, "held_streams": 200,
         "churn_streams": 400, "churn_first": 100, "churn_concurrency": 50,
         "churn_seconds": 8.0, "deadline": 10.0}


class Bench:
    """One comparison run: the shared upstream and load generator, results and notes."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.started = time.monotonic()
        self.results: report.Results = {}
        self.notes: list[str] = []
        self.upstream = Upstream()
        self.lg = Loadgen()

    def log(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f}s] {text}", file=sys.stderr, flush=True)

    def step(self, column: str, name: str, measure: Callable[[], Metrics]) -> bool:
        """Run one measurement; any failure becomes a note and the row shows "–"."""
        self.log(f"{column}: {name}")
        try:
            self.results.setdefault(column, {}).update(measure())
            return True
        except Exception as exc:  # noqa: BLE001 - reported, and the run goes on
            self.notes.append(f"{column}: {name} not measured: {type(exc).__name__}: {exc}")
            self.lg.stop()  # it may be mid-command: start clean
            self.lg = Loadgen()
            return False

    def steps(self, subject: Subject, names: list[str]) -> None:
        """Run the named measurements against one subject, in order. After one fails
        the rest are skipped: a server that stopped answering would time out each."""
        plan, lg = self.plan, lambda: self.lg
        table: dict[str, Callable[[], Metrics]] = {
            "warm-up": lambda: scenarios.warm_up(lg(), subject, plan),
            "TTFT of one stream": lambda: scenarios.single_stream_ttft(lg(), subject, plan),
            "throughput and CPU": lambda: scenarios.throughput(lg(), subject, plan),
            "memory per held stream": lambda: scenarios.held_memory(lg(), subject,
                                                                    self.upstream, plan),
            "streams starting together": lambda: scenarios.burst(lg(), subject, plan),
            "memory after many streams": lambda: scenarios.churn(lg(), subject, plan),
        }
        for index, name in enumerate(names):
            if not self.step(subject.name, name, table[name]):
                if names[index + 1:]:
                    self.notes.append(f"{subject.name}: skipped after that: "
                                      + ", ".join(names[index + 1:]))
                return

    def direct(self) -> None:
        subject = Subject("direct", "openai", self.upstream.port)
        self.steps(subject, ["warm-up", "TTFT of one stream", "throughput and CPU",
                             "streams starting together"])

    def nginx(self) -> None:
        """The nginx column, if nginx can start (it is optional: a note otherwise)."""
        try:
            nginx = Nginx(self.upstream.port, 4 * max(self.plan.burst_streams,
                                                      self.plan.held_streams) + 256)
        except (OSError, RuntimeError) as exc:
            self.notes.append(f"nginx: not run: {exc}")
            return
        try:
            subject = Subject("nginx", "openai", nginx.port, nginx.pids, nginx.worker)
            self.steps(subject, ["warm-up", "TTFT of one stream", "throughput and CPU",
                                 "memory per held stream", "streams starting together"])
        finally:
            nginx.stop()

    def sluice(self, mode: str) -> None:
        """Three fresh workers: latency and throughput; held and burst streams; churn."""
        try:
            server = RedisServer() if mode == "redis" else None
        except (OSError, RuntimeError) as exc:
            self.notes.append(f"{mode}: not run, redis-server did not start: {exc}"[:500])
            return
        try:
            for names in (["warm-up", "TTFT of one stream", "throughput and CPU"],
                          ["warm-up", "memory per held stream", "streams starting together"],
                          ["memory after many streams"]):
                phase = " + ".join(name for name in names if name != "warm-up")
                with self.sluice_worker(mode, server, phase) as subject:
                    if subject is not None:
                        self.steps(subject, names)
        finally:
            if server is not None:
                server.stop()

    @contextlib.contextmanager
    def sluice_worker(self, mode: str, server: RedisServer | None,
                      phase: str) -> Iterator[Subject | None]:
        """A fresh Sluice for one phase (None if it cannot start); its log's errors
        and a worker that died along the way become notes when it stops."""
        try:
            sluice = Sluice(self.upstream.port, server, connections=max(
                self.plan.burst_streams, self.plan.held_streams) + 100)
        except Exception as exc:  # noqa: BLE001 - a Sluice that cannot start is a result
            self.notes.append(f"{mode}: Sluice did not start for {phase}: {exc}"[:500])
            yield None
            return
        pid = sluice.worker_pid or -1
        subject = Subject(mode, "sluice", sluice.port, lambda: [pid], lambda: pid)
        if server is not None:
            client = redis.Redis(port=server.port, socket_timeout=5)
            subject.redis_pid = server.process.pid
            subject.redis_clients = lambda: procs.redis_clients_of(client, server.port, pid)
        try:
            yield subject
        finally:
            if sluice.restarted():
                self.notes.append(f"{mode}: the worker died or was replaced ({phase})")
            for line in sluice.log_errors():
                self.notes.append(f"{mode}: worker log ({phase}): {line}")
            sluice.stop()

    def close(self) -> None:
        self.lg.stop()
        self.upstream.stop()


def environment() -> list[str]:
    """Where and on what the numbers were taken."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")

    def command(*args: str) -> str:
        try:
            done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=10)
            return (done.stdout or done.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    commit = command("git", "rev-parse", "--short", "HEAD") or "unknown"
    if command("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    return [f"date        {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %z}",
            f"nproc       {len(os.sched_getaffinity(0))}",
            f"cpu         {cpu}",
            f"commit      {commit}",
            f"load avg    {load_average()} (1, 5, 15 min) at the start",
            f"python      {platform.python_version()}; "
            f"{command('redis-server', '--version').split(' sha=')[0]}; "
            f"{command(shutil.which('nginx') or 'nginx', '-v') or 'no nginx'}"]


def describe(plan: Plan, burst_chunks: int, burst_gap_ms: float) -> str:
    """The sizes behind the numbers, in a few lines."""
    return (f"one gunicorn gevent worker; medians of {plan.repeats} for TTFT, throughput and "
            f"direct/nginx bursts, of {plan.burst_repeats} for Sluice bursts\n"
            f"TTFT: {plan.ttft_streams} streams one at a time (5 chunks); throughput: "
            f"{plan.tput_streams} streams x {plan.tput_chunks} chunks, no gaps, for >= "
            f"{plan.tput_seconds:g}s\nburst: {plan.burst_streams} streams sent at once "
            f"({burst_chunks} chunks {burst_gap_ms:g} ms apart); held: {plan.held_streams} "
            f"streams after their first token\nchurn: {plan.churn_streams:,} streams "
            f"(5 chunks), {plan.churn_concurrency} at a time, new ones started for at most "
            f"{plan.churn_seconds:g}s; streams still open {plan.deadline:g}s into a run fail\n"
            "×: ratio to direct (TTFT, throughput, bursts) or to nginx (CPU, memory)")


def load_average() -> str:
    """Other work on the machine skews every number: say how busy it was."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def parse_plan(argv: list[str] | None = None) -> tuple[Plan, argparse.Namespace]:
    """The sizes to run: the defaults (or --quick's), each overridable by its option."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--modes", default="memory,redis", help="Sluice modes, comma-separated")
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx column")
    parser.add_argument("--burst-chunks", type=int, default=20)
    parser.add_argument("--burst-gap-ms", type=float, default=50.0)
    for name, value in FULL.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=type(value), default=None,
                            help=f"default {value} ({QUICK[name]} with --quick)")
    args = parser.parse_args(argv)
    sizes = {name: getattr(args, name) if getattr(args, name) is not None else
             (QUICK if args.quick else FULL)[name] for name in FULL}
    sizes["churn_first"] = min(sizes["churn_first"], sizes["churn_streams"])
    model = f"c{max(1, args.burst_chunks)}-g{max(0.0, args.burst_gap_ms):g}"
    return Plan(burst_model=model, **sizes), args


def main(argv: list[str] | None = None) -> None:
    """Measure every column, then print the environment, the table and the findings."""
    plan, args = parse_plan(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - {"memory", "redis"}:
        raise SystemExit(f"--modes takes memory and/or redis, got {args.modes!r}")
    print("\n".join(environment()))
    print(describe(plan, args.burst_chunks, args.burst_gap_ms), flush=True)
    bench = Bench(plan)
    try:
        bench.direct()
        if not args.no_nginx and (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
            bench.nginx()
        for mode in modes:
            bench.sluice(mode)
    finally:
        bench.close()
    text, met, checked = report.table(bench.results, plan)
    print()
    print(text)
    print(f"\ntargets met: {met} of {checked} (?: passing so far, but the run was cut short)")
    for line in report.findings(bench.results, plan) + bench.notes:
        print("- " + line)
    print(f"took {time.monotonic() - bench.started:.0f}s; load avg {load_average()} at the end")


if __name__ == "__main__":
    main()
