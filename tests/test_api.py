"""The JSON API through Flask's test client: threads, replies, and every rejection."""
from __future__ import annotations

import json

import pytest

from services.providers.base import ChatMessage, ChatRequest
from services.providers.demo import demo_answer

from .fake_upstream import Reply, fixture
from .sse_client import read_test_response


def new_thread(client, **fields) -> str:
    response = client.post("/api/v1/threads", json=fields)
    assert response.status_code == 201
    return response.get_json()["thread"]["id"]


def messages(client, thread_id: str) -> list[dict]:
    return client.get(f"/api/v1/threads/{thread_id}/messages").get_json()["messages"]


def test_thread_lifecycle(client):
    first = new_thread(client, title="First", system="Be brief.")
    second = new_thread(client)
    listed = client.get("/api/v1/threads").get_json()["threads"]
    assert [t["id"] for t in listed] == [second, first]  # newest first
    thread = client.get(f"/api/v1/threads/{first}").get_json()["thread"]
    assert thread["title"] == "First" and thread["system"] == "Be brief."
    assert client.delete(f"/api/v1/threads/{first}").status_code == 204
    assert client.get(f"/api/v1/threads/{first}").status_code == 404
    assert [t["id"] for t in client.get("/api/v1/threads").get_json()["threads"]] == [second]


def test_non_streaming_reply_returns_both_stored_messages(client):
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages", json={"content": "Hi there"})
    assert response.status_code == 200
    body = response.get_json()
    expected = demo_answer(ChatRequest("echo", (ChatMessage("user", "Hi there"),)))
    assert body["message"]["role"] == "user" and body["message"]["content"] == "Hi there"
    answer = body["response"]
    assert (answer["role"], answer["status"], answer["finish_reason"]) == (
        "assistant", "complete", "stop")
    assert answer["content"] == expected
    assert answer["model"] == "demo/echo"
    assert answer["usage"]["output_tokens"] > 100
    assert answer["metrics"]["duration_ms"] >= answer["metrics"]["ttft_ms"] >= 0
    assert messages(client, thread_id) == [body["message"], answer]
    title = client.get(f"/api/v1/threads/{thread_id}").get_json()["thread"]["title"]
    assert title == "Hi there"  # an untitled thread is named after its first message


def test_streaming_reply_through_the_test_client(client):
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream",
                           json={"content": "Stream please"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    events = read_test_response(response)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.event for e in events[:2]] == ["start", "message_saved"]
    assert [e.event for e in events].count("done") == 1 and events[-1].event == "done"
    stored = messages(client, thread_id)
    assert events[1].data["message"] == stored[0]
    assert "".join(e.data["content"] for e in events if e.event == "delta") == stored[1]["content"]


def test_history_and_system_prompt_reach_the_provider(client, fake_openai):
    fake_openai.script("history-check", Reply(fixture("openai/text_with_usage.sse")))
    thread_id = new_thread(client, system="You are terse.", model="openai/history-check")
    for content in ("one", "two"):
        assert client.post(f"/api/v1/threads/{thread_id}/messages",
                           json={"content": content}).status_code == 200
    sent = fake_openai.requests["history-check"][-1]["json"]["messages"]
    assert sent == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "Héllo, 世界 👋🏽 — done."},
        {"role": "user", "content": "two"},
    ]


def test_a_provider_failure_is_a_502_with_both_messages_stored(client, fake_openai):
    fake_openai.script("fails", Reply(fixture("openai/error_then_done.sse")))
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages",
                           json={"content": "x", "model": "openai/fails"})
    assert response.status_code == 502
    body = response.get_json()
    assert body["error"]["code"] == "upstream_error"
    assert "KV cache" in body["error"]["message"]
    assert body["response"]["status"] == "error"
    assert body["response"]["content"] == "Partial an"  # what did arrive is kept
    assert [m["status"] for m in messages(client, thread_id)] == ["complete", "error"]


def test_models_lists_the_demo_model(client):
    models = client.get("/api/v1/models").get_json()["models"]
    assert {"id": "demo/echo", "provider": "demo", "streaming": True} in models


def test_health_and_readiness(client, backend):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    expected = {"database": "ok"} | ({"redis": "ok"} if backend.redis_url else {})
    assert ready.status_code == 200 and ready.get_json()["checks"] == expected


def test_readiness_fails_when_the_database_is_gone(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/never.db")
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "unavailable",
                                "checks": {"database": "unreachable"} | (
                                    {"redis": "ok"} if app.config["REDIS_URL"] else {})}


# --- rejections: the right status, a JSON error, and nothing stored -------------------

def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.data
    assert response.content_type == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]


@pytest.mark.parametrize("path", ["/messages", "/messages/stream"])
@pytest.mark.parametrize(("body", "status", "code"), [
    pytest.param(b"{not json", 400, "invalid_json", id="malformed-json"),
    pytest.param(b"[1, 2]", 400, "invalid_json", id="not-an-object"),
    pytest.param(b"{}", 400, "invalid_content", id="missing-content"),
    pytest.param(json.dumps({"content": "   "}).encode(), 400, "invalid_content", id="blank"),
    pytest.param(json.dumps({"content": 42}).encode(), 400, "invalid_content", id="not-text"),
    pytest.param(json.dumps({"content": "hi", "model": "nope/x"}).encode(), 400,
                 "unknown_model", id="unknown-provider"),
    pytest.param(json.dumps({"content": "hi", "model": "demo/nope"}).encode(), 400,
                 "unknown_model", id="unknown-demo-model"),
    pytest.param(json.dumps({"content": "hi", "model": "anthropic/claude"}).encode(), 400,
                 "unknown_model", id="unconfigured-provider"),
    pytest.param(json.dumps({"content": "hi", "model": "gpt-4o"}).encode(), 400,
                 "unknown_model", id="no-provider-prefix"),
    pytest.param(json.dumps({"content": "x" * (2 * 1024 * 1024)}).encode(), 413,
                 "payload_too_large", id="oversized"),
])
def test_bad_message_requests_are_rejected_and_store_nothing(client, path, body, status, code):
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}{path}", data=body,
                           content_type="application/json")
    assert_error(response, status, code)
    assert messages(client, thread_id) == []


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/threads/thr_missing"),
    ("DELETE", "/api/v1/threads/thr_missing"),
    ("GET", "/api/v1/threads/thr_missing/messages"),
    ("POST", "/api/v1/threads/thr_missing/messages"),
    ("POST", "/api/v1/threads/thr_missing/messages/stream"),
])
def test_unknown_thread_is_404(client, method, path):
    response = client.open(path, method=method, json={"content": "hi"})
    assert_error(response, 404, "thread_not_found")
    assert client.get("/api/v1/threads").get_json()["threads"] == []


@pytest.mark.parametrize(("body", "code"), [
    ({"model": "nope/x"}, "unknown_model"),
    ({"title": 5}, "invalid_field"),
    ({"system": ["a"]}, "invalid_field"),
])
def test_bad_thread_requests_are_rejected_and_store_nothing(client, body, code):
    assert_error(client.post("/api/v1/threads", json=body), 400, code)
    assert client.get("/api/v1/threads").get_json()["threads"] == []


def test_unknown_stream_is_404_for_events_and_cancel(client):
    assert_error(client.get("/api/v1/streams/str_missing/events"), 404, "stream_not_found")
    assert_error(client.post("/api/v1/streams/str_missing/cancel"), 404, "stream_not_found")


def test_bad_last_event_id_is_400(client):
    thread_id = new_thread(client)
    stream_id = client.post(f"/api/v1/threads/{thread_id}/messages",
                            json={"content": "hi"}).get_json()["response"]["stream_id"]
    response = client.get(f"/api/v1/streams/{stream_id}/events",
                          headers={"Last-Event-ID": "abc"})
    assert_error(response, 400, "invalid_event_id")


def test_unknown_routes_and_methods_answer_json(client):
    assert_error(client.get("/api/v1/nowhere"), 404, "not_found")
    assert_error(client.put("/api/v1/threads"), 405, "method_not_allowed")


@pytest.mark.parametrize(("field", "code"), [
    ({"callback_url": "http://127.0.0.1:9/hook"}, "invalid_callback_url"),  # loopback
    ({"tools": ["clock"]}, "unknown_tool"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "invalid_tools"),
    ({"tools": {"type": "function"}}, "invalid_tools"),
])
def test_requests_sluice_cannot_honour_are_refused_not_ignored(client, field, code):
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages",
                           json={"content": "hi", **field})
    assert_error(response, 400, code)
    assert messages(client, thread_id) == []


def test_a_worker_that_is_shutting_down_takes_no_new_answers(app, client):
    from services.streaming import streaming
    thread_id = new_thread(client)
    streaming(app).draining.set()
    for path in ("/messages", "/messages/stream"):
        response = client.post(f"/api/v1/threads/{thread_id}{path}", json={"content": "hi"})
        assert_error(response, 503, "shutting_down")
    assert messages(client, thread_id) == []


def test_renaming_a_thread(client):
    thread_id = new_thread(client, title="Old")
    renamed = client.patch(f"/api/v1/threads/{thread_id}", json={"title": "  New name  "})
    assert renamed.status_code == 200 and renamed.get_json()["thread"]["title"] == "New name"
    assert_error(client.patch(f"/api/v1/threads/{thread_id}", json={"title": " "}), 400,
                 "invalid_field")
    assert_error(client.patch("/api/v1/threads/thr_missing", json={"title": "x"}), 404,
                 "thread_not_found")
    for nothing in ({}, {"unknown": 1}):  # says what may be sent, not that a title is wrong
        refused = client.patch(f"/api/v1/threads/{thread_id}", json=nothing)
        assert_error(refused, 400, "invalid_field")
        assert refused.get_json()["error"]["message"] == (
            "Send at least one of 'title', 'model', 'system', 'documents' to change.")
    assert client.get(f"/api/v1/threads/{thread_id}").get_json()["thread"]["title"] == "New name"


def test_the_chat_page_is_served_with_its_scripts(client):
    page = client.get("/")
    assert page.status_code == 200 and b'id="composer"' in page.data
    for path in ("/static/js/app.js", "/static/js/sluice-stream.js",
                 "/static/vendor/marked/marked.esm.js", "/static/vendor/dompurify/purify.es.js",
                 "/static/vendor/socket.io/socket.io.esm.min.js"):
        script = client.get(path)
        assert script.status_code == 200 and "javascript" in script.content_type, path
        script.close()
