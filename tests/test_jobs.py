"""Jobs end to end in one process (its queue worker started): 202 at once, the answer
run by the worker, the webhook delivered signed, retried, failed, redelivered;
Idempotency-Key; cancel; and callback URLs that could reach private places refused."""
from __future__ import annotations

import time

import pytest

from services.jobs import jobs

from .fake_upstream import openai_text_reply
from .sse_client import read_test_response, text_of
from .webhook_receiver import WebhookReceiver, receiver as _receiver

hook = pytest.fixture(_receiver)


@pytest.fixture
def worker_app(make_app):
    """An app that takes its own jobs, may call loopback receivers, retries quickly."""
    app = make_app(SLUICE_WEBHOOK_ALLOW_PRIVATE="on", SLUICE_WEBHOOK_RETRY_SECONDS=(0.2, 0.2),
                   SLUICE_LEASE_SECONDS=3.0)
    jobs(app).start(workers=2)
    yield app
    jobs(app).stop()


@pytest.fixture
def client(worker_app):
    return worker_app.test_client()


def secret(client) -> str:
    response = client.post("/api/v1/webhooks/secret")
    assert response.status_code == 201
    return response.get_json()["secret"]


def wait_for(client, job_id: str, check, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").get_json()["job"]
        if check(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def new_thread(client) -> str:
    return client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]


def test_a_chat_job_is_answered_and_delivered_signed(client, hook: WebhookReceiver):
    hook.secret = secret(client)
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages",
                           json={"content": "Hello job", "callback_url": hook.url})
    assert response.status_code == 202
    job = response.get_json()["job"]
    assert job["status"] in ("queued", "running") and job["kind"] == "message"
    done = wait_for(client, job["id"], lambda j: j["webhook"]["status"] == "delivered")
    assert done["status"] == "complete" and done["webhook"]["attempts"] == 1
    [delivery] = hook.deliveries
    assert delivery.verified and delivery.webhook_id == done["webhook"]["id"]
    answer = delivery.body["job"]["result"]
    assert answer["role"] == "assistant" and answer["status"] == "complete"
    stored = client.get(f"/api/v1/threads/{thread_id}/messages").get_json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"] == answer["content"]
    # The job's stream: queued, taken by a worker, the model called, the answer,
    # delivering, done.
    events = read_test_response(client.get(f"/api/v1/jobs/{job['id']}/events"))
    stages = [(e.data["stage"], e.data.get("job_status")) for e in events if e.event == "status"]
    assert stages[:3] == [("queued", "queued"), ("connecting", "running"), ("connecting", None)]
    assert [stage for stage, _ in stages[3:]] == ["delivering"]
    assert text_of(events) == answer["content"] and events[-1].event == "done"


def test_a_job_message_asking_to_remember_keeps_the_fact(client, hook):
    """Sent as a job, "remember that …" is kept as it is from a streamed or JSON reply."""
    hook.secret = secret(client)
    response = client.post(f"/api/v1/threads/{new_thread(client)}/messages", json={
        "content": "Remember that I prefer metric units.", "callback_url": hook.url})
    assert response.status_code == 202
    done = wait_for(client, response.get_json()["job"]["id"], lambda j: j["status"] != "queued"
                    and j["status"] != "running")
    assert done["status"] == "complete"
    memories = client.get("/api/v1/memories").get_json()["memories"]
    assert [(m["content"], m["source"]) for m in memories] == [("I prefer metric units", "user")]


def test_an_operation_job_delivers_its_result(client, hook, fake_openai):
    hook.secret = secret(client)
    fake_openai.script("job-op", openai_text_reply('{"name": "Ada"}'))
    response = client.post("/api/v1/operations/extract", json={
        "input": {"text": "Ada", "fields": ["name"]}, "model": "openai/job-op",
        "callback_url": hook.url})
    assert response.status_code == 202
    job_id = response.get_json()["job"]["id"]
    done = wait_for(client, job_id, lambda j: j["webhook"]["status"] == "delivered")
    assert done["result"] == {"name": "Ada"}
    assert hook.deliveries[0].verified and hook.deliveries[0].body["job"]["result"] == {"name": "Ada"}
    runs = client.get("/api/v1/operations/runs").get_json()["runs"]
    assert runs[0]["id"] == done["operation_run_id"] and runs[0]["status"] == "complete"


def test_a_receiver_down_then_up_gets_it_after_retries(client, hook):
    hook.secret = secret(client)
    hook.statuses = [503, 500]
    thread_id = new_thread(client)
    job_id = client.post(f"/api/v1/threads/{thread_id}/messages", json={
        "content": "retry me", "callback_url": hook.url}).get_json()["job"]["id"]
    done = wait_for(client, job_id, lambda j: j["webhook"]["status"] == "delivered")
    attempts = done["webhook"]["deliveries"]
    assert [a["status_code"] for a in attempts] == [503, 500, 204]
    assert len(hook.unique()) == 1 and all(d.verified for d in hook.deliveries)


def test_a_receiver_failing_forever_fails_the_webhook_with_every_attempt_kept(client, hook):
    hook.statuses = [500] * 10
    thread_id = new_thread(client)
    job_id = client.post(f"/api/v1/threads/{thread_id}/messages", json={
        "content": "never", "callback_url": hook.url}).get_json()["job"]["id"]
    done = wait_for(client, job_id, lambda j: j["webhook"]["status"] == "failed")
    assert done["status"] == "complete" and done["webhook"]["status"] == "failed"
    assert [a["status_code"] for a in done["webhook"]["deliveries"]] == [500, 500, 500]
    # A manual redelivery tries once more, under the same webhook-id.
    hook.statuses = []
    assert client.post(f"/api/v1/jobs/{job_id}/redeliver").status_code == 202
    again = wait_for(client, job_id, lambda j: j["webhook"]["status"] == "delivered")
    assert again["webhook"]["attempts"] == 4 and len(hook.unique()) == 1


def test_an_idempotency_key_makes_no_second_job(client, hook):
    thread_id = new_thread(client)
    body = {"content": "once", "callback_url": hook.url}
    headers = {"Idempotency-Key": "order-42"}
    first = client.post(f"/api/v1/threads/{thread_id}/messages", json=body, headers=headers)
    again = client.post(f"/api/v1/threads/{thread_id}/messages", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["job"]["id"] == again.get_json()["job"]["id"]
    other = client.post(f"/api/v1/threads/{thread_id}/messages", headers=headers,
                        json={**body, "content": "different"})
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_conflict"
    assert len(client.get("/api/v1/jobs").get_json()["jobs"]) == 1
    users = [m for m in client.get(f"/api/v1/threads/{thread_id}/messages").get_json()["messages"]
             if m["role"] == "user"]
    assert len(users) == 1


def test_cancelling_a_queued_job_ends_it_and_says_so(make_app, hook):
    app = make_app(SLUICE_WEBHOOK_ALLOW_PRIVATE="on")  # no worker yet: the job stays queued
    client = app.test_client()
    thread_id = new_thread(client)
    job_id = client.post(f"/api/v1/threads/{thread_id}/messages", json={
        "content": "stop", "callback_url": hook.url}).get_json()["job"]["id"]
    cancelled = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 202 and cancelled.get_json()["job"]["status"] == "cancelled"
    jobs(app).start(workers=1)
    try:
        done = wait_for(client, job_id, lambda j: j["webhook"]["status"] == "delivered")
    finally:
        jobs(app).stop()
    assert done["status"] == "cancelled" and hook.deliveries[0].body["job"]["status"] == "cancelled"
    messages = client.get(f"/api/v1/threads/{thread_id}/messages").get_json()["messages"]
    assert [m["role"] for m in messages] == ["user"]  # never answered


def test_another_users_job_is_not_found(client):
    for path in ("", "/events"):
        assert client.get(f"/api/v1/jobs/job_nobody{path}").status_code == 404
    for path in ("/cancel", "/redeliver"):
        assert client.post(f"/api/v1/jobs/job_nobody{path}").status_code == 404


# --- SSRF: refused without a packet leaving the machine --------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://loopback.test/hook", "ftp://hooks.test/hook",
    "http://2130706433/hook", "http://localhost:8000/hook",
])
def test_callback_urls_reaching_private_places_are_refused(make_app, net, url):
    net.resolves("loopback.test", "127.0.0.1")
    client = make_app().test_client()
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages",
                           json={"content": "x", "callback_url": url})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_callback_url"
    assert client.get(f"/api/v1/threads/{thread_id}/messages").get_json()["messages"] == []
    response = client.post("/api/v1/operations/refine",
                           json={"input": {"text": "x"}, "callback_url": url})
    assert response.status_code == 400


def test_a_name_that_resolves_to_a_private_address_later_fails_that_attempt(make_app, net):
    net.resolves("hooks.example", "93.184.215.14")  # public when the job is accepted
    app = make_app(SLUICE_WEBHOOK_RETRY_SECONDS=(0.2,))
    client = app.test_client()
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages", json={
        "content": "x", "callback_url": "http://hooks.example/hook"})
    assert response.status_code == 202
    net.resolves("hooks.example", "10.0.0.7")  # rebound to a private address
    jobs(app).start(workers=1)
    try:
        done = wait_for(client, response.get_json()["job"]["id"],
                        lambda j: j["webhook"]["status"] == "failed")
    finally:
        jobs(app).stop()
    errors = [a["error"] for a in done["webhook"]["deliveries"]]
    assert errors and all("refused" in e and "10.0.0.7" in e for e in errors)
