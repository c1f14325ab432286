"""The processes a comparison runs: the fake upstream, nginx, Sluice, and the load generator.

Every start has a time limit and every process started here is stopped by its
own id (terminate, then kill), so a stuck server cannot hang the benchmark.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench import procs
from tests.live_server import ROOT, LiveServer, free_port
from tests.services import NginxServer, RedisServer

# The last line of a traceback: "redis.exceptions.ConnectionError: Too many connections".
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout|Exit)\b(:|$)")


def stop_process(process: subprocess.Popen[Any] | None, grace: float = 10) -> None:
    """Terminate a process we started; kill it if it is still there after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class Upstream:
    """bench/upstream.py in its own process on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", "--port", str(self.port)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = _readline(self.process, 15)
        if not line.startswith("listening"):
            stop_process(self.process)
            raise RuntimeError("the fake upstream did not start")

    def release(self) -> None:
        """Let every held answer go on."""
        requests.post(f"http://127.0.0.1:{self.port}/release", timeout=10)

    def stop(self) -> None:
        stop_process(self.process)


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    """One line of a child's stdout, or "" if none comes in time."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()),  # type: ignore
                     daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


class Nginx(NginxServer):
    """nginx serving the shipped deploy/nginx.conf, proxying to the fake upstream, with
    enough connections for 500 proxied streams (two sockets each)."""

    def pids(self) -> list[int]:
        return [self.process.pid, *procs.children(self.process.pid)]

    def worker(self) -> int | None:
        found = procs.children(self.process.pid)
        return found[0] if found else None


@dataclass
class Sluice:
    """Sluice on gunicorn with one gevent worker, in memory or Redis mode."""

    upstream_port: int
    redis: RedisServer | None = None
    connections: int = 1000
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sluice-bench-")))

    def __post_init__(self) -> None:
        env = {"DATABASE_URL": f"sqlite:///{self.dir}/bench.db",
               "OPENAI_BASE_URL": f"http://127.0.0.1:{self.upstream_port}/v1",
               "OPENAI_API_KEY": "bench", "WEB_CONCURRENCY": "1",
               "SLUICE_GRACEFUL_TIMEOUT": "3",
               "SLUICE_WORKER_CONNECTIONS": str(max(1000, self.connections))}
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        try:
            self.server = LiveServer(self.dir, env).start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.port = self.server.port
        self.worker_pid = self.worker()

    def worker(self) -> int | None:
        """The gunicorn master's (single) worker, as it is now."""
        assert self.server.process is not None
        found = procs.children(self.server.process.pid)
        return found[0] if found else None

    def restarted(self) -> bool:
        """The worker died or was replaced since start (a timeout, a crash)."""
        return self.worker() != self.worker_pid

    def log_errors(self, top: int = 3) -> list[str]:
        """The commonest exception lines in the server's log, e.g. "x3 redis...Error: ..."."""
        try:
            text = self.server.log_path.read_text(errors="replace")
        except OSError:
            return []
        found = Counter(line.strip()[:200] for line in text.splitlines()
                        if EXCEPTION_LINE.match(line))
        return [f"x{count} {line}" for line, count in found.most_common(top)]

    def stop(self) -> None:
        """Stop gunicorn, and its worker by id if a killed master left it behind."""
        worker = self.worker()
        try:
            self.server.stop()
        except subprocess.TimeoutExpired:
            stop_process(self.server.process, 0)
        if worker is not None and procs.cpu_seconds(worker) is not None:
            os.kill(worker, signal.SIGKILL)  # orphaned by a master that had to be killed
        shutil.rmtree(self.dir, ignore_errors=True)


class LoadgenError(Exception):
    """The load generator gave no answer in time (it has been stopped)."""


class Loadgen:
    """Drives bench/loadgen.py over its stdin/stdout, one JSON line each way."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.tell(command)
        return self.answer(timeout)

    def tell(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def answer(self, timeout: float) -> dict[str, Any]:
        line = _readline(self.process, timeout)
        if not line:
            self.stop()
            raise LoadgenError(f"no answer from the load generator within {timeout:.0f}s")
        return json.loads(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            try:
                self.tell({"cmd": "quit"})
            except OSError:
                pass
        stop_process(self.process, 5)
