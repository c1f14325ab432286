"""The load generator: a separate gevent process that runs many streams at once.

    python -m bench.loadgen        # then one JSON command per line on stdin

It lives in its own process so its CPU is never counted as the measured
worker's, and so gevent's monkey-patching stays out of the benchmark driver.
Commands (each answered by one JSON line on stdout):

    {"cmd": "threads", "port": P, "count": N}      create N Sluice threads, keep them
    {"cmd": "run", "target": "sluice"|"openai", "port": P, "model": M,
     "streams": N, "concurrency": C, "deadline": S, "fresh_threads": false,
     "report_opened": false, "idle": 30,
     "together": false, "start_within": S}          run N streams, C at a time
    {"cmd": "quit"}

With `together`, all N streams connect first and then send their requests at
once (TTFT is always timed from sending the request). With `report_opened`, a
line {"opened": n} comes first, once every stream has its first token or has
failed (or a third of the deadline has passed); that is when a driver holding
streams open measures memory. A stream fails on a
non-200, on an end without `done`/[DONE], or on `done` with a status other than
"complete"; one still running at the deadline fails as "deadline". Streams that
could not start within `start_within` seconds are skipped, not failed.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.lock import Semaphore  # noqa: E402
from gevent.pool import Pool  # noqa: E402

from bench.wire import (Response, SSECounter, WireError, connect,  # noqa: E402
                        encode_request, request, send)

IDLE_TIMEOUT = 30.0  # seconds a stream may stay silent before it counts as failed
CREATE_CONCURRENCY = 20
SKIPPED = "skipped"  # not started before the run's `start_within` ran out: no failure


@dataclass
class Outcome:
    """What one stream did."""

    ttft: float | None = None  # seconds from starting the request to the first token
    chunks: int = 0
    error: str | None = None  # None: the stream completed


def create_thread(port: int) -> str:
    """A new Sluice thread's id."""
    response = request(port, "POST", "/api/v1/threads", {}, IDLE_TIMEOUT)
    try:
        body = response.body()
    finally:
        response.sock.close()
    if response.status != 200 and response.status != 201:
        raise WireError(f"thread creation answered {response.status}")
    return str(json.loads(body)["thread"]["id"])


class Gate:
    """Lets streams that connected one by one send their requests at the same moment."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.go = Event()

    def arrive(self) -> None:
        self.arrived += 1

    def open_when_all_arrived(self, timeout: float) -> None:
        until = time.perf_counter() + timeout
        while self.arrived < self.expected and time.perf_counter() < until:
            gevent.sleep(0.01)
        self.go.set()


@dataclass(frozen=True)
class Job:
    """One stream to run: where, which answer, on which thread (None: make one)."""

    target: str
    port: int
    model: str
    idle: float
    thread: str | None = None
    first_token: Event | None = None
    gate: Gate | None = None  # when set, streams connect first and send together


def stream_once(job: Job, slots: Semaphore, start_until: float) -> Outcome:
    """One streamed answer once a slot is free; skipped if none was free before `start_until`."""
    with slots:
        if time.perf_counter() > start_until:
            return Outcome(error=SKIPPED)
        return _stream(job)


def _stream(job: Job) -> Outcome:
    """Connect (then wait at the gate, if any), send, and read the stream to its end."""
    outcome = Outcome()
    try:
        try:
            data = _encoded(job)
            sock = connect(job.port, job.idle)
        finally:  # a stream that failed to connect must not keep the others waiting
            if job.gate is not None:
                job.gate.arrive()
        if job.gate is not None:
            job.gate.go.wait()
        started = time.perf_counter()
        _read_stream(send(sock, data), outcome, started, job.first_token)
    except WireError as exc:
        outcome.error = outcome.error or str(exc)
    except (OSError, ValueError, KeyError) as exc:
        outcome.error = outcome.error or type(exc).__name__
    return outcome


def _encoded(job: Job) -> bytes:
    """The request of one stream: Sluice's stream endpoint, or Chat Completions."""
    if job.target == "sluice":
        thread = job.thread or create_thread(job.port)
        return encode_request(job.port, "POST", f"/api/v1/threads/{thread}/messages/stream",
                              {"content": "benchmark", "model": f"openai/{job.model}"})
    return encode_request(job.port, "POST", "/v1/chat/completions",
                          {"model": job.model, "stream": True,
                           "messages": [{"role": "user", "content": "benchmark"}]})


def _read_stream(response: Response, outcome: Outcome, started: float,
                 first_token: Event | None) -> None:
    """Count the stream's chunks into `outcome`, noting its TTFT and how it ended."""
    try:
        if response.status != 200:
            outcome.error = f"http {response.status}"
            return
        counter = SSECounter()
        for data in response.pieces():
            ended = counter.feed(data)
            if outcome.ttft is None and counter.chunks:
                outcome.ttft = time.perf_counter() - started
                if first_token is not None:
                    first_token.set()
            if ended:
                break
        outcome.chunks = counter.chunks
        if counter.done_status is None:
            outcome.error = "no done"
        elif counter.done_status != "complete":
            outcome.error = f"done {counter.done_status}"
    finally:
        response.sock.close()


class Loadgen:
    """Holds created threads between commands and runs stream batches."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def make_threads(self, port: int, count: int) -> dict[str, Any]:
        """Create `count` Sluice threads for later runs (a thread takes one answer at a time)."""
        made: list[str] = []
        failed = Counter[str]()

        def one(_: int) -> None:
            try:
                made.append(create_thread(port))
            except WireError as exc:
                failed[str(exc)] += 1
            except (OSError, ValueError, KeyError) as exc:
                failed[type(exc).__name__] += 1

        Pool(CREATE_CONCURRENCY).map(one, range(count))
        self.threads.extend(made)
        return {"created": len(made), "failed": dict(failed)}

    def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run the streams of one `run` command and summarise them."""
        count, deadline = int(cmd["streams"]), float(cmd["deadline"])
        signals = [Event() for _ in range(count)] if cmd.get("report_opened") else None
        gate = Gate(count) if cmd.get("together") else None
        jobs = self._spawn(cmd, count, signals, gate)
        if gate is not None:
            gate.open_when_all_arrived(min(10.0, deadline / 3))
        started = time.perf_counter()
        if signals is not None:
            self._report_opened(jobs, signals, started + deadline / 3)
        gevent.joinall(jobs, timeout=max(0.0, started + deadline - time.perf_counter()))
        late = {id(job) for job in jobs if not job.ready()}
        gevent.killall([job for job in jobs if id(job) in late], timeout=5)
        wall = time.perf_counter() - started
        outcomes = [job.value if isinstance(job.value, Outcome) else
                    Outcome(error="deadline" if id(job) in late else "crash") for job in jobs]
        return summarise(outcomes, wall)

    def _spawn(self, cmd: dict[str, Any], count: int, signals: list[Event] | None,
               gate: Gate | None) -> list[gevent.Greenlet]:
        """A greenlet per stream; at most `concurrency` (all, if together) run at once."""
        fresh = cmd.get("fresh_threads") or cmd["target"] != "sluice"
        threads = [None] * count if fresh else self._take(count)
        slots = Semaphore(count if gate else max(1, int(cmd["concurrency"])))
        idle = float(cmd.get("idle", IDLE_TIMEOUT))
        start_until = time.perf_counter() + float(cmd.get("start_within", cmd["deadline"]))
        return [gevent.spawn(stream_once, Job(cmd["target"], int(cmd["port"]), cmd["model"],
                                              idle, threads[i],
                                              signals[i] if signals else None, gate),
                             slots, start_until)
                for i in range(count)]

    def _take(self, count: int) -> list[str | None]:
        taken, self.threads = self.threads[:count], self.threads[count:]
        return [*taken, *([None] * (count - len(taken)))]

    @staticmethod
    def _report_opened(jobs: list[gevent.Greenlet], signals: list[Event],
                       until: float) -> None:
        while time.perf_counter() < until:
            if all(s.is_set() or j.ready() for s, j in zip(signals, jobs)):
                break
            gevent.sleep(0.05)
        reply({"opened": sum(s.is_set() and not j.ready() for s, j in zip(signals, jobs))})


def summarise(outcomes: list[Outcome], wall: float) -> dict[str, Any]:
    """Counts, the commonest failure reasons, and every TTFT (for percentiles)."""
    errors = Counter(o.error for o in outcomes if o.error and o.error != SKIPPED)
    skipped = sum(1 for o in outcomes if o.error == SKIPPED)
    return {
        "streams": len(outcomes) - skipped,
        "skipped": skipped,
        "failed": sum(errors.values()),
        "errors": dict(errors.most_common(5)),
        "chunks": sum(o.chunks for o in outcomes),
        "ttfts": [round(o.ttft, 6) for o in outcomes if o.ttft is not None],
        "wall": wall,
    }


def reply(message: dict[str, Any]) -> None:
    """One answer line to the driver."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    """Answer commands from stdin until "quit" or end of input."""
    loadgen = Loadgen()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            return
        if cmd["cmd"] == "threads":
            reply(loadgen.make_threads(int(cmd["port"]), int(cmd["count"])))
        elif cmd["cmd"] == "run":
            reply(loadgen.run(cmd))
        else:
            reply({"error": f"unknown command {cmd['cmd']!r}"})


if __name__ == "__main__":
    main()
