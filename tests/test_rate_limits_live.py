"""Rate limits and quotas against live servers: requests a minute hold across two
worker processes sharing Redis, a key's open-stream quota refuses before storing
anything, and the official OpenAI SDK waits out `Retry-After` and succeeds."""
from __future__ import annotations

import itertools
import threading

import openai
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .accounts import create_account, new_key
from .fake_upstream import Reply, fixture
from .sse_client import read_stream

_names = (f"limits-{n}" for n in itertools.count())


def refusals(server, limit: str) -> float:
    """`sluice_rate_limited_total{limit=…}` as /metrics shows it."""
    text = server.api("GET", "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return sum(s.value for s in families["sluice_rate_limited"].samples
               if s.name.endswith("_total") and s.labels.get("limit") == limit)


def slow_model(fake_openai, seconds: float) -> str:
    """An OpenAI model whose answer comes in two halves `seconds` apart."""
    name = next(_names)
    body = fixture("openai/text_with_usage.sse")
    fake_openai.script(name, Reply(body, chunk_size=len(body) // 2 + 1, delay=seconds))
    return f"openai/{name}"


@pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)
def test_requests_a_minute_hold_across_two_workers_sharing_redis(start_server):
    server = start_server(SLUICE_AUTH="on", WEB_CONCURRENCY="2", SLUICE_KEY_RPM="7")
    account = create_account(server, "rita")
    answers = []
    for _ in range(12):  # a new connection each: gunicorn spreads them over both workers
        answers.append(requests.get(server.url + "/api/v1/threads", timeout=30,
                                    headers={**account.auth, "Connection": "close"}))

    assert [a.status_code for a in answers] == [200] * 7 + [429] * 5
    assert answers[0].headers["x-ratelimit-limit-requests"] == "7"
    assert answers[6].headers["x-ratelimit-remaining-requests"] == "0"
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    served_by = set(server.log_path.read_text().split("Booting worker with pid: ")[1:])
    assert len(served_by) == 2  # two worker processes were up and shared the count
    # Another key of the same user has its own count.
    _, other = new_key(server, "rita")
    assert server.api("GET", "/api/v1/threads",
                      headers={"Authorization": f"Bearer {other}"}).status_code == 200


@pytest.fixture(scope="module")
def quota_server(start_server):
    return start_server(SLUICE_AUTH="on")


def test_a_key_over_its_stream_quota_is_refused_before_anything_is_stored(
        quota_server, fake_openai):
    server = quota_server
    account = create_account(server, "quinn", "--max-streams", "1")
    model = slow_model(fake_openai, 1.5)
    first_thread = account.api("POST", "/api/v1/threads", json={}).json()["thread"]["id"]
    second_thread = account.api("POST", "/api/v1/threads", json={}).json()["thread"]["id"]
    first = server.api("POST", f"/api/v1/threads/{first_thread}/messages/stream",
                       json={"content": "one", "model": model}, headers=account.auth,
                       stream=True)
    events = read_stream(first)
    next(events)  # the first answer is running

    refused = account.api("POST", f"/api/v1/threads/{second_thread}/messages",
                          json={"content": "two", "model": model})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_streams"
    assert refused.headers["Retry-After"] == "1"
    assert account.api("GET", f"/api/v1/threads/{second_thread}/messages"
                       ).json()["messages"] == []
    assert refusals(server, "key_streams") >= 1  # operators see it in /metrics

    assert next(e for e in events if e.event == "done").data["status"] == "complete"
    again = account.api("POST", f"/api/v1/threads/{second_thread}/messages",
                        json={"content": "two", "model": model})
    assert again.status_code == 200  # the slot came back when the first answer ended


def test_the_openai_sdk_waits_out_retry_after_and_succeeds(quota_server, fake_openai):
    server = quota_server
    account = create_account(server, "sam", "--max-streams", "1")
    slow = slow_model(fake_openai, 1.2)
    with openai.OpenAI(base_url=server.url + "/v1", api_key=account.key, max_retries=3,
                       timeout=30) as client:
        holding = threading.Thread(target=lambda: client.chat.completions.create(
            model=slow, messages=[{"role": "user", "content": "hold"}]))
        holding.start()
        for _ in range(200):  # until the first answer holds the key's one slot
            if fake_openai.requests[slow.partition("/")[2]]:
                break
            threading.Event().wait(0.02)

        raw = client.chat.completions.with_raw_response.create(
            model="demo/echo", messages=[{"role": "user", "content": "after you"}])
        holding.join(10)

        assert raw.retries_taken >= 1  # refused first with 429 and Retry-After: 1
        assert "demo model" in raw.parse().choices[0].message.content
        assert client.models.list().data  # the key works for /v1/models too
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-sluice-wrong",
                       max_retries=0) as stranger, pytest.raises(openai.AuthenticationError):
        stranger.models.list()
