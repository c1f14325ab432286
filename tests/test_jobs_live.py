"""Jobs on real gunicorn workers and standalone `flask --app wsgi worker` processes:
a worker killed with SIGKILL mid-answer, and the job still delivered exactly once;
many jobs sent to one thread at once, each stored and answered."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .live_server import ROOT
from .test_durability_live import worker_pid
from .webhook_receiver import WebhookReceiver, receiver as _receiver

hook = pytest.fixture(_receiver)
shared_backend = pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)
FAST_RECOVERY = {"SLUICE_WEBHOOK_ALLOW_PRIVATE": "on", "SLUICE_LEASE_SECONDS": "2",
                 "SLUICE_DEMO_TOKENS_PER_SECOND": "40"}


def job_of(server, job_id: str) -> dict:
    return server.api("GET", f"/api/v1/jobs/{job_id}").json()["job"]


def wait_job(server, job_id: str, check, timeout: float = 40) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = job_of(server, job_id)
        if check(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def submit(server, hook: WebhookReceiver) -> str:
    hook.secret = server.api("POST", "/api/v1/webhooks/secret").json()["secret"]
    thread_id = server.new_thread()
    response = server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                          json={"content": "a long job", "callback_url": hook.url})
    assert response.status_code == 202, response.text
    return response.json()["job"]["id"]


def assert_delivered_once(server, hook: WebhookReceiver, job_id: str) -> dict:
    job = wait_job(server, job_id, lambda j: j["webhook"]["status"] == "delivered")
    assert job["status"] == "complete", job
    time.sleep(1.0)  # a second delivery, if any were coming, would arrive by now
    assert list(hook.unique()) == [job["webhook"]["id"]]
    assert all(d.verified for d in hook.deliveries)
    delivered = hook.deliveries[-1].body["job"]
    assert delivered["result"]["status"] == "complete"
    return job


def test_a_job_whose_worker_is_killed_runs_again_and_is_delivered_once(start_server, hook):
    server = start_server(**FAST_RECOVERY)
    job_id = submit(server, hook)
    running = wait_job(server, job_id, lambda j: j["status"] == "running")
    assert running["status"] == "running"
    time.sleep(1.0)  # well into the answer
    os.kill(worker_pid(server), signal.SIGKILL)  # gunicorn's master starts a new worker
    job = assert_delivered_once(server, hook, job_id)
    assert job["attempts"] == 2 and job["stream_id"] != running["stream_id"]
    thread_id = hook.deliveries[-1].body["job"]["thread_id"]
    statuses = [m["status"] for m in server.messages(thread_id) if m["role"] == "assistant"]
    assert statuses == ["interrupted", "complete"]  # the first run's text is kept too


def start_worker(server, log: Path) -> subprocess.Popen:
    """`flask --app wsgi worker`, as an operator runs it beside the web servers."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                                cwd=ROOT, env=server.env, stdout=out, stderr=subprocess.STDOUT)


@shared_backend
def test_standalone_workers_take_jobs_and_a_new_one_finishes_a_killed_ones(
        start_server, hook, tmp_path):
    server = start_server(SLUICE_JOB_WORKERS="0", **FAST_RECOVERY)
    job_id = submit(server, hook)
    time.sleep(1.0)
    assert job_of(server, job_id)["status"] == "queued"  # the web server takes no jobs
    log = tmp_path / "worker.log"
    first = start_worker(server, log)
    try:
        wait_job(server, job_id, lambda j: j["status"] == "running")
        time.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start_worker(server, log)
        try:
            job = assert_delivered_once(server, hook, job_id)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(40) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert job["attempts"] == 2
    assert "Traceback" not in log.read_text()


def test_jobs_sent_to_one_thread_at_once_are_all_accepted_and_answered(start_server, hook):
    """Each request takes the thread's next position in turn: none is refused with a 500
    for racing another to the same one (as they were on PostgreSQL), and each is
    answered once."""
    server = start_server(SLUICE_WEBHOOK_ALLOW_PRIVATE="on",
                          SLUICE_DEMO_TOKENS_PER_SECOND="2000")
    hook.secret = server.api("POST", "/api/v1/webhooks/secret").json()["secret"]
    thread_id = server.new_thread()

    def send(index: int):
        return server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                          json={"content": f"job {index}", "callback_url": hook.url})
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(send, range(4)))
    assert [r.status_code for r in responses] == [202] * 4, [r.text for r in responses]
    for response in responses:
        job = wait_job(server, response.json()["job"]["id"],
                       lambda j: j["webhook"]["status"] == "delivered")
        assert job["status"] == "complete", job
    stored = server.messages(thread_id)
    # A worker may start answering before the last request is stored: the order of the
    # messages may interleave, but each request is there once, and each is answered.
    asked = [m["content"] for m in stored if m["role"] == "user"]
    answers = [m for m in stored if m["role"] == "assistant"]
    assert sorted(asked) == [f"job {i}" for i in range(4)]
    assert len(answers) == 4 and all(m["status"] == "complete" for m in answers)
