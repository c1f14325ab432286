"""`/metrics` from real gunicorn servers: two workers' counts summed into one answer,
a killed worker's running streams leaving the gauge, and nginx in front."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from .fake_upstream import Reply, fixture, sse_events_of
from .prometheus_text import Scrape, of_families, read_metrics
from .services import NginxServer
from .sse_client import Received, read_stream

TOKEN = "live-scrape-token"
STREAM_ROUTE = "/api/v1/threads/<id:thread_id>/messages/stream"
EVENTS_ROUTE = "/api/v1/streams/<id:stream_id>/events"
DEMO = {"provider": "demo", "model": "demo/echo"}
# Counts an earlier run left in an operator's directory: the server must not add them in.
STALE_COUNTS = ("from prometheus_client import Counter; Counter('sluice_answers', 'stale', "
                "['provider', 'model', 'outcome']).labels('demo', 'demo/echo', 'complete')"
                ".inc(100)")


def scrape(server, token: str | None = TOKEN) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = server.api("GET", "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return read_metrics(response.text)


def wait_for(condition, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def by_worker(directory: Path, sample: str, **labels: str) -> dict[int, float]:
    """Each worker's own part of `sample`, read from its files in the directory."""
    parts: dict[int, float] = {}
    for path in directory.glob("*.db"):
        if path.stat().st_size:  # a file being created is empty for a moment
            pid = int(path.stem.rpartition("_")[2])
            own = of_families(MultiProcessCollector.merge([str(path)]))
            parts[pid] = parts.get(pid, 0) + own.value(sample, **labels)
    return parts


def settled(metrics: Scrape) -> Scrape | None:
    """The scrape, once no answer is being produced and every streamed response has been
    closed (just after its client read the last byte: four answers and a resume)."""
    closed = (metrics.value("sluice_http_request_duration_seconds_count", route=STREAM_ROUTE),
              metrics.value("sluice_http_request_duration_seconds_count", route=EVENTS_ROUTE))
    return metrics if closed == (5, 1) and not metrics.value("sluice_active_streams") else None


def workers(server) -> list[int]:
    master = server.process.pid
    return [int(pid) for pid in
            Path(f"/proc/{master}/task/{master}/children").read_text().split()]


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """The worker takes no connections (the other takes them all) for a moment, well
    within gunicorn's 30 s worker timeout. Only ever while it has no response open:
    a response of a stopped and continued gevent worker was seen to take until the
    server stopped to close."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def until_first_delta(events) -> list[Received]:
    seen = []
    for event in events:
        seen.append(event)
        if event.event == "delta":
            return seen
    raise AssertionError(f"the stream ended without a delta: {seen}")


@pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)  # any worker, any stream
def test_two_workers_answer_one_sum(start_server, fake_openai, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    subprocess.run([sys.executable, "-c", STALE_COUNTS], check=True,
                   env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)})
    server = start_server(WEB_CONCURRENCY="2", SLUICE_METRICS_TOKEN=TOKEN,
                          SLUICE_DEMO_TOKENS_PER_SECOND="300",
                          PROMETHEUS_MULTIPROC_DIR=str(directory))
    first, second = workers(server)
    # An answer that sends its first words, then nothing until it is cancelled.
    hang = Reply(split_at=sse_events_of(fixture("openai/text_with_usage.sse"))[:2], then_hang=60)
    fake_openai.script("metrics-hang", hang)

    with paused(second):  # the first worker serves these
        completed = [list(read_stream(server.open_stream(server.new_thread(), f"answer {n}")))
                     for n in range(3)]
        events = read_stream(server.open_stream(server.new_thread(), "cancel me",
                                                model="openai/metrics-hang"))
        stream_id = until_first_delta(events)[0].data["stream_id"]
        assert server.api("POST", f"/api/v1/streams/{stream_id}/cancel").status_code == 202
        assert list(events)[-1].data["status"] == "cancelled"
    wait_for(lambda: by_worker(directory, "sluice_http_request_duration_seconds_count",
                               route=STREAM_ROUTE).get(first) == 4, what="the responses to close")
    with paused(first):  # and the second these
        unknown = server.api("POST", f"/api/v1/threads/{server.new_thread()}/messages/stream",
                             json={"content": "hi", "model": "nowhere/model"})
        assert unknown.status_code == 400
        replayed = list(read_stream(server.resume(completed[0][0].data["stream_id"], 0)))
        assert replayed == completed[0]
    # Each worker holds only its own part (and the stale file is gone)...
    assert by_worker(directory, "sluice_answers_total") == {first: 4, second: 0}
    assert by_worker(directory, "sluice_cancels_total") == {first: 1, second: 0}
    assert by_worker(directory, "sluice_resumes_total") == {first: 0, second: 1}
    assert by_worker(directory, "sluice_http_requests_total", route=STREAM_ROUTE,
                     status="400") == {first: 0, second: 1}

    # ...and whichever worker answers the scrape, it answers with the sums.
    wait_for(lambda: settled(scrape(server)), what="the responses to close")
    scrapes = []
    for pid in (first, second):
        with paused(pid):
            scrapes.append(scrape(server))
    for metrics in scrapes:
        assert settled(metrics)
        assert metrics.value("sluice_answers_total", **DEMO, outcome="complete") == 3
        assert metrics.value("sluice_answers_total", provider="openai", model="other",
                             outcome="cancelled") == 1
        assert metrics.value("sluice_answers_total") == 4  # not the stale 100 either
        # One sample per answer that produced output, measured by its run.
        assert metrics.value("sluice_time_to_first_token_seconds_count") == 4
        assert metrics.value("sluice_answer_duration_seconds_count", outcome="complete") == 3
        for kind in ("input", "output"):
            reported = sum(answer[-1].data["usage"][f"{kind}_tokens"] for answer in completed)
            assert metrics.value("sluice_tokens_total", **DEMO, type=kind) == reported
            assert metrics.value("sluice_tokens_total", type=kind) == reported
        assert metrics.value("sluice_cancels_total") == 1
        assert metrics.value("sluice_resumes_total") == 1
        assert metrics.value("sluice_provider_errors_total") == 0
        assert metrics.value("sluice_http_requests_total", route=STREAM_ROUTE,
                             status="200") == 4
        assert metrics.value("sluice_http_requests_total", route=STREAM_ROUTE,
                             status="400") == 1

    refused = server.api("GET", "/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json()["error"]["code"] == "unauthorized"
    assert server.api("GET", "/metrics", headers={"Authorization": "Bearer nope"}
                      ).status_code == 401


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # one worker; no Redis needed
def test_a_killed_workers_streams_leave_the_gauge_and_its_counts_stay(start_server):
    server = start_server(SLUICE_DEMO_TOKENS_PER_SECOND="20")
    directory = Path(re.search(r"Prometheus metrics are kept in (\S+)",
                               server.log_path.read_text())[1])
    response = server.open_stream(server.new_thread(), "die with your worker")
    until_first_delta(read_stream(response))
    before = scrape(server, token=None)
    assert before.value("sluice_active_streams") == 1
    assert before.value("sluice_http_requests_total", route="/healthz") >= 1

    [dead] = workers(server)
    os.kill(dead, signal.SIGKILL)
    response.close()
    # The master reaps it (dropping its gauge) before it starts the worker that answers.
    after = scrape(server, token=None)
    assert workers(server) != [dead]
    assert after.value("sluice_active_streams") == 0
    assert not list(directory.glob(f"gauge_livesum_{dead}.db"))
    # Counts are for the server's life: the dead worker's stay in the sums.
    assert after.value("sluice_http_requests_total", route="/healthz") == before.value(
        "sluice_http_requests_total", route="/healthz")

    server.stop()
    assert not directory.exists()  # the server's own directory goes with it


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_behind_nginx_metrics_are_not_served_without_a_token(live_server):
    nginx = NginxServer(live_server.port)
    try:
        proxied = requests.get(nginx.url + "/metrics", timeout=10)
        assert proxied.status_code == 403
        assert proxied.json()["error"]["code"] == "forbidden"
    finally:
        nginx.stop()
    assert scrape(live_server, token=None).value("sluice_http_requests_total",
                                                 route="/metrics", status="403") >= 1
