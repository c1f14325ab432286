"""What another web site, or a rebinding DNS name, can make a browser send to a local
Sluice — and the loose ends of stream resumption — against a live gunicorn server."""
from __future__ import annotations

import time

import pytest
import requests

from .hostile import answered_thread, assert_refused, nothing_changes
from .sse_client import read_stream


@pytest.fixture(scope="session")
def guarded_server(start_server):
    return start_server(SLUICE_ALLOWED_ORIGINS="http://allowed.example:3000",
                        SLUICE_ALLOWED_HOSTS="chat.example.com,.corp.example",
                        SLUICE_EVENT_TTL_SECONDS="2", SLUICE_DEMO_TOKENS_PER_SECOND="5000")


@pytest.fixture
def probe(guarded_server):
    return answered_thread(guarded_server)


@pytest.fixture
def unchanged(guarded_server, probe):
    with nothing_changes(guarded_server, probe):
        yield


def state_changing_requests(probe) -> list[tuple[str, str]]:
    thread = f"/api/v1/threads/{probe['thread_id']}"
    return [("POST", "/api/v1/threads"), ("PATCH", thread), ("DELETE", thread),
            ("POST", thread + "/messages"), ("POST", thread + "/messages/stream"),
            ("POST", f"/api/v1/streams/{probe['stream_id']}/cancel")]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/json"])
def test_a_body_that_is_not_declared_json_changes_nothing(guarded_server, probe, unchanged,
                                                          content_type):
    # What an HTML form on any page can send without asking: parsed as JSON, it
    # used to create threads and messages.
    for method, path in state_changing_requests(probe):
        response = guarded_server.api(method, path, data=b'{"title": "x", "content": "hi"}',
                                      headers={"Content-Type": content_type})
        assert assert_refused(response, {415}) == "unsupported_media_type"


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},  # sandboxed frames and file:// pages
    {"Origin": "http://127.0.0.1.evil.example"},
    {"Origin": "http://allowed.example:3001"},  # an allowed origin's neighbour
    {"Sec-Fetch-Site": "cross-site"},  # a browser that left Origin out
    {"Sec-Fetch-Site": "same-site"},
])
def test_a_state_change_from_another_origin_is_refused(guarded_server, probe, unchanged,
                                                       headers):
    for method, path in state_changing_requests(probe):
        response = guarded_server.api(method, path, json={"title": "x", "content": "hi"},
                                      headers=headers)
        assert assert_refused(response, {403}) == "forbidden_origin"


def test_same_origin_and_allowed_origins_may_change_things(guarded_server):
    for origin in (guarded_server.url, "http://allowed.example:3000"):
        response = guarded_server.api("POST", "/api/v1/threads", json={"title": origin},
                                      headers={"Origin": origin,
                                               "Sec-Fetch-Site": "same-origin"})
        assert response.status_code == 201, response.text
        guarded_server.api("DELETE", f"/api/v1/threads/{response.json()['thread']['id']}")


def test_reading_from_another_origin_is_not_refused_and_not_shared(guarded_server):
    response = guarded_server.api("GET", "/api/v1/threads",
                                  headers={"Origin": "http://evil.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers  # the browser hides it


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example",
                                  "127.0.0.1.nip.io", "corp.example.evil", "[::2]:80"])
def test_a_foreign_host_is_refused(guarded_server, probe, unchanged, host):
    # DNS rebinding: a page whose own name now points at 127.0.0.1 sends its own Host.
    for method, path in [("GET", "/"), ("GET", "/api/v1/threads"),
                         *state_changing_requests(probe)]:
        response = guarded_server.api(method, path, json={"title": "x", "content": "hi"},
                                      headers={"Host": host})
        assert assert_refused(response, {400}) == "invalid_host"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "chat.example.com",
                                  "CHAT.example.com", "corp.example", "eu.corp.example"])
def test_loopback_and_configured_hosts_are_served(guarded_server, host):
    response = guarded_server.api("GET", "/api/v1/threads",
                                  headers={"Host": f"{host}:{guarded_server.port}"})
    assert response.status_code == 200, response.text


def test_the_page_and_every_answer_carry_the_security_headers(guarded_server):
    for path in ("/", "/api/v1/threads", "/no/such/page", "/static/js/app.js"):
        headers = guarded_server.api("GET", path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("method,path", [("GET", "/no/such/page"), ("PUT", "/api/v1/threads"),
                                         ("DELETE", "/api/v1/models")])
def test_routing_errors_are_json(guarded_server, method, path):
    assert_refused(guarded_server.api(method, path), {404, 405})


@pytest.mark.parametrize("model", ["", "   "])
def test_an_empty_model_is_refused_everywhere(guarded_server, probe, unchanged, model):
    for method, path, body in [
            ("POST", "/api/v1/threads", {"model": model}),
            ("POST", f"/api/v1/threads/{probe['thread_id']}/messages",
             {"content": "hi", "model": model}),
            ("POST", f"/api/v1/threads/{probe['thread_id']}/messages/stream",
             {"content": "hi", "model": model})]:
        assert assert_refused(guarded_server.api(method, path, json=body), {400}) == \
            "invalid_field"


def resume(server, stream_id: str, after: int) -> requests.Response:
    return requests.get(f"{server.url}/api/v1/streams/{stream_id}/events",
                        headers={"Last-Event-ID": str(after)}, timeout=30, stream=True)


def read_events(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [event.data for event in read_stream(response)]


def test_resuming_at_or_past_the_end_of_a_finished_stream_is_204(guarded_server, probe):
    events = read_events(resume(guarded_server, probe["stream_id"], 0))
    last = events[-1]["seq"]
    assert events[-1]["type"] == "done"
    tail = read_events(resume(guarded_server, probe["stream_id"], last - 1))
    assert [event["type"] for event in tail] == ["done"]
    for after in (last, last + 1, 10**17):
        response = resume(guarded_server, probe["stream_id"], after)
        assert response.status_code == 204 and response.content == b""


def test_a_stream_replayed_from_storage_also_ends_with_204(guarded_server, probe):
    time.sleep(2.5)  # the log keeps finished streams 2 s here; then storage answers
    guarded_server.new_thread()  # any stream activity drops expired logs
    replay = read_events(resume(guarded_server, probe["stream_id"], 0))
    assert [event["type"] for event in replay] == ["start", "delta", "done"]
    response = resume(guarded_server, probe["stream_id"], replay[-1]["seq"])
    assert response.status_code == 204


def test_a_deleted_threads_stream_is_gone_from_every_endpoint(guarded_server, probe):
    assert guarded_server.api("DELETE", f"/api/v1/threads/{probe['thread_id']}").status_code == 204
    stream = probe["stream_id"]
    for method, path in [("GET", f"/api/v1/streams/{stream}/events"),
                         ("POST", f"/api/v1/streams/{stream}/cancel")]:
        assert assert_refused(guarded_server.api(method, path), {404}) == "stream_not_found"


def test_the_server_says_which_address_to_open(guarded_server):
    log = guarded_server.log_path.read_text()
    assert f"Sluice is ready: open http://127.0.0.1:{guarded_server.port}" in log
