"""Every provider's wire format, retries, fallbacks and timeouts, through a running server.

The fake upstream answers for OpenAI, Anthropic, Ollama and the Responses API alike
(it picks the reply by the requested model), so these go through the real adapters,
the real run and the real gunicorn + gevent server.
"""
from __future__ import annotations

import itertools
import json
import time

import pytest

from .fake_upstream import SILENT_UPSTREAMS, Reply, fixture, sse_events_of
from .sse_client import read_stream, text_of

_names = (f"p-{n}" for n in itertools.count())
NDJSON = "application/x-ndjson"

FORMATS = [
    pytest.param("openai", "openai/text_with_usage.sse", "Héllo, 世界 👋🏽 — done.", None, [],
                 "stop", (19, 7), id="openai-text"),
    pytest.param("openai", "openai/reasoning.sse", "Hello! 👋", "The user greets; answer warmly.",
                 [], "stop", (9, 12), id="openai-reasoning"),
    pytest.param("openai", "openai/parallel_tool_calls.sse", "", None,
                 [("call_W8xq", "get_weather", '{"city": "Zürich"}'),
                  ("call_T3mz", "get_time", '{"tz": "Asia/Tokyo"}')],
                 "tool_calls", (82, 41), id="openai-parallel-tools"),
    pytest.param("anthropic", "anthropic/text_with_usage.sse", "Grüße, 世界 👋🏽", None, [],
                 "stop", (21, 14), id="anthropic-text"),
    pytest.param("anthropic", "anthropic/thinking.sse", "27 × 453 = 12,231",
                 "The user wants 27 × 453. 27 × 453 = 12 231.", [], "stop", (1036, 61),
                 id="anthropic-thinking"),
    pytest.param("anthropic", "anthropic/tool_use.sse", "I'll look up the weather in Paris.", None,
                 [("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather",
                   '{"city": "Paris", "unit": "celsius"}')], "tool_calls", (472, 89),
                 id="anthropic-tool-use"),
    pytest.param("ollama", "ollama/text_with_usage.ndjson", "Grüße, 世界 👋🏽", None, [], "stop",
                 (26, 5), id="ollama-text"),
    pytest.param("ollama", "ollama/thinking.ndjson", "Hallo zusammen!",
                 "The user wants a greeting.", [], "stop", (31, 42), id="ollama-thinking"),
    pytest.param("ollama", "ollama/tool_call.ndjson", "", None,
                 [(None, "get_weather", '{"city": "Paris"}')], "tool_calls", (187, 21),
                 id="ollama-tool-call"),
    pytest.param("openai-responses", "openai_responses/text_with_usage.sse", "Grüße, 世界 👋🏽",
                 None, [], "stop", (21, 9), id="responses-text"),
    pytest.param("openai-responses", "openai_responses/function_call.sse", "", None,
                 [("call_Qm3vXr8LkT2pNw7sYb4Jd9Fh", "get_weather",
                   '{"city":"München","unit":"celsius"}')], "tool_calls", (64, 19),
                 id="responses-function-call"),
]


def same_calls(got: list[tuple], expected: list[tuple]) -> bool:
    """The calls expected; an expected id of None is one the provider did not send, for
    which Sluice made one of its own."""
    return len(got) == len(expected) and all(
        (got_id == id_ if id_ else got_id.startswith("call_")) and rest == expected_rest
        for (got_id, *rest), (id_, *expected_rest) in zip(got, expected))


def script(fake, provider: str, name: str, *replies: Reply) -> str:
    fake.script(name, *replies)
    return f"{provider}/{name}"


def recorded(path: str, **options) -> Reply:
    content_type = NDJSON if path.endswith(".ndjson") else "text/event-stream"
    return Reply(fixture(path), content_type=content_type, **options)


def stream(live_server, model: str, content: str = "hi", **fields) -> tuple[list, dict]:
    thread_id = live_server.new_thread()
    events = list(read_stream(live_server.open_stream(thread_id, content, model=model,
                                                      **fields)))
    return events, live_server.messages(thread_id)[-1]


@pytest.mark.parametrize(("provider", "path", "text", "reasoning", "calls", "finish", "usage"),
                         FORMATS)
def test_each_format_streams_exactly_what_the_model_sent(live_server, fake_openai, provider,
                                                          path, text, reasoning, calls, finish,
                                                          usage):
    model = script(fake_openai, provider, next(_names), recorded(path, chunk_size=7))
    events, stored = stream(live_server, model)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].data["model"] == model
    assert text_of(events) == stored["content"] == text
    streamed_reasoning = "".join(e.data["content"] for e in events if e.event == "reasoning")
    assert (streamed_reasoning or None) == stored["reasoning"] == reasoning
    streamed_calls = [(e.data["id"], e.data["name"], e.data["arguments"])
                      for e in events if e.event == "tool_call"]
    assert streamed_calls == [(c["id"], c["name"], c["arguments"])
                              for c in stored["tool_calls"] or []]
    assert same_calls(streamed_calls, calls)
    usage_event = next(e.data for e in events if e.event == "usage")
    assert (usage_event["input_tokens"], usage_event["output_tokens"]) == usage
    done = events[-1].data
    assert (done["status"], done["finish_reason"], done["model"]) == ("complete", finish, model)
    assert (stored["status"], stored["finish_reason"]) == ("complete", finish)
    assert stored["usage"] == {"input_tokens": usage[0], "output_tokens": usage[1]}


@pytest.mark.parametrize(("provider", "path", "text", "reasoning", "calls", "finish", "usage"),
                         FORMATS)
def test_each_format_through_the_json_endpoint(live_server, fake_openai, provider, path, text,
                                               reasoning, calls, finish, usage):
    model = script(fake_openai, provider, next(_names), recorded(path, chunk_size=3))
    thread_id = live_server.new_thread()
    response = live_server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                               json={"content": "hi", "model": model})
    assert response.status_code == 200
    answer = response.json()["response"]
    assert answer == live_server.messages(thread_id)[-1]
    assert (answer["content"], answer["reasoning"], answer["finish_reason"]) == (
        text, reasoning, finish)
    assert same_calls([(c["id"], c["name"], c["arguments"])
                       for c in answer["tool_calls"] or []], calls)


@pytest.mark.parametrize(("provider", "path", "code", "retryable", "kept"), [
    pytest.param("openai", "openai/error_then_done.sse", "upstream_error", False, "Partial an",
                 id="openai-error-object-then-done"),
    pytest.param("openai", "openai/content_filter.sse", "content_filter", False,
                 "Here is how to", id="openai-content-filter"),
    pytest.param("anthropic", "anthropic/overloaded_midstream.sse", "overloaded", True,
                 "Partial an", id="anthropic-overloaded-mid-stream"),
    pytest.param("anthropic", "anthropic/truncated.sse", "incomplete_stream", True, None,
                 id="anthropic-truncated"),
    pytest.param("ollama", "ollama/error_mid_stream.ndjson", "upstream_error", False,
                 "Partial an", id="ollama-error-line"),
    pytest.param("openai-responses", "openai_responses/incomplete_content_filter.sse",
                 "content_filter", False, "Here is how you", id="responses-content-filter"),
])
def test_a_failure_after_text_ends_with_error_then_done_and_keeps_the_text(
        live_server, fake_openai, provider, path, code, retryable, kept):
    name = next(_names)
    model = script(fake_openai, provider, name, recorded(path, chunk_size=5))
    events, stored = stream(live_server, model)
    error = next(e.data for e in events if e.event == "error")
    assert (error["code"], error["retryable"]) == (code, retryable)
    assert events[-1].event == "done" and events[-1].data["status"] == "error"
    assert stored["status"] == "error" and stored["error"]["code"] == code
    assert stored["content"] == text_of(events)
    if kept is not None:
        assert stored["content"] == kept
    assert len(fake_openai.requests[name]) == 1  # never retried once text was streamed


# --- retries -------------------------------------------------------------------------

def error_reply(status: int, **headers: str) -> Reply:
    body = json.dumps({"error": {"message": f"status {status}", "type": "x"}}).encode()
    return Reply(body, status=status, content_type="application/json", headers=headers)


def test_server_errors_are_retried_before_the_first_output(live_server, fake_openai):
    name = next(_names)
    model = script(fake_openai, "openai", name, error_reply(503), error_reply(500),
                   recorded("openai/text_with_usage.sse"))
    events, stored = stream(live_server, model)
    assert (stored["status"], stored["content"]) == ("complete", "Héllo, 世界 👋🏽 — done.")
    assert not [e for e in events if e.event == "error"]
    assert len(fake_openai.requests[name]) == 3
    # Each wait is said: the model called, a retry after each failure, the model again.
    statuses = [e.data for e in events if e.event == "status"]
    assert [s["stage"] for s in statuses] == ["connecting", "retrying", "connecting",
                                              "retrying", "connecting"]
    assert [(s["attempt"], s["reason"]) for s in statuses if s["stage"] == "retrying"] == [
        (2, "overloaded"), (3, "upstream_error")]
    assert all(s["delay"] >= 0 and "retrying in" in s["message"] for s in statuses
               if s["stage"] == "retrying")


def test_retry_after_is_honoured(live_server, fake_openai):
    name = next(_names)
    model = script(fake_openai, "openai", name, error_reply(429, **{"Retry-After": "1"}),
                   recorded("openai/text_with_usage.sse"))
    _, stored = stream(live_server, model)
    assert stored["status"] == "complete"
    first, second = fake_openai.requests[name]
    assert second["at"] - first["at"] >= 0.95


def test_anthropic_overloaded_529_is_retried(live_server, fake_openai):
    name = next(_names)
    overloaded = json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                        "message": "Overloaded"}}).encode()
    model = script(fake_openai, "anthropic", name,
                   Reply(overloaded, status=529, content_type="application/json"),
                   recorded("anthropic/text_with_usage.sse"))
    _, stored = stream(live_server, model)
    assert (stored["status"], stored["content"]) == ("complete", "Grüße, 世界 👋🏽")
    assert len(fake_openai.requests[name]) == 2


def test_a_stream_cut_before_any_output_is_retried(live_server, fake_openai):
    name = next(_names)
    role_only = sse_events_of(fixture("openai/text_with_usage.sse"))[0]
    model = script(fake_openai, "openai", name, Reply(role_only),
                   recorded("openai/text_with_usage.sse"))
    events, stored = stream(live_server, model)
    assert stored["content"] == text_of(events) == "Héllo, 世界 👋🏽 — done."
    assert len(fake_openai.requests[name]) == 2


def test_errors_that_a_retry_cannot_fix_are_not_retried(live_server, fake_openai):
    name = next(_names)
    model = script(fake_openai, "openai", name, error_reply(401))
    events, stored = stream(live_server, model)
    error = next(e.data for e in events if e.event == "error")
    assert (error["code"], error["retryable"]) == ("upstream_auth", False)
    assert stored["status"] == "error"
    assert len(fake_openai.requests[name]) == 1


# --- fallbacks -----------------------------------------------------------------------

def test_a_failing_model_falls_back_and_start_and_done_name_the_one_that_answered(
        live_server, fake_openai):
    fake_openai.script("primary-down", error_reply(503))
    fake_openai.script("backup-up", recorded("anthropic/text_with_usage.sse"))
    events, stored = stream(live_server, "openai/primary-down")
    # `start` names the model asked for (it is written before any model is called); a
    # status says which model takes over; `done` names the one that answered.
    assert events[0].event == "start" and events[0].data["model"] == "openai/primary-down"
    fallback = [e.data for e in events if e.event == "status" and e.data["stage"] == "fallback"]
    assert [(f["model"], f["reason"]) for f in fallback] == [("anthropic/backup-up",
                                                              "overloaded")]
    assert events[-1].data["model"] == "anthropic/backup-up"
    assert (stored["model"], stored["status"], stored["content"]) == (
        "anthropic/backup-up", "complete", "Grüße, 世界 👋🏽")
    assert len(fake_openai.requests["primary-down"]) == 3  # its retries first
    assert fake_openai.requests["backup-up"][-1]["path"] == "/v1/messages"


def test_when_every_model_fails_the_last_error_is_reported(live_server, fake_openai):
    fake_openai.script("all-down", error_reply(500))
    fake_openai.script("also-down", Reply(b'{"error":"model \\"also-down\\" not found"}',
                                          status=404, content_type="application/json"))
    events, stored = stream(live_server, "openai/all-down")
    assert [e.event for e in events if e.event != "status"] == [
        "start", "message_saved", "error", "done"]
    error = next(e.data for e in events if e.event == "error")
    assert error["code"] == "upstream_not_found"
    assert (stored["status"], stored["model"]) == ("error", "ollama/also-down")


# --- timeouts ------------------------------------------------------------------------

def test_start_and_the_saved_message_come_before_the_provider_answers(live_server,
                                                                       fake_openai):
    fake_openai.script("slow-to-start", Reply(hold=5))
    thread_id = live_server.new_thread()
    sent = time.monotonic()
    response = live_server.open_stream(thread_id, "hi", model="openai/slow-to-start")
    events = read_stream(response)
    start, saved = next(events), next(events)
    waited = time.monotonic() - sent
    response.close()
    assert (start.event, saved.event) == ("start", "message_saved")
    assert start.data["model"] == "openai/slow-to-start"
    assert saved.data["message"]["content"] == "hi"
    assert waited < 0.1, f"start took {waited:.3f}s"
    live_server.wait_until_settled(thread_id)

def test_first_token_timeout(live_server, fake_openai):
    body = fixture("openai/text_with_usage.sse")
    fake_openai.script("ttft-slow", Reply(split_at=[b": keep-alive\n\n", body], delay=5))
    events, stored = stream(live_server, "openai/ttft-slow")
    error = next(e.data for e in events if e.event == "error")
    assert (error["code"], error["retryable"]) == ("timeout", True)
    assert "within 0.5s" in error["message"]
    assert (stored["status"], stored["content"]) == ("error", "")
    assert fake_openai.hung_up["ttft-slow"].wait(5)  # the waiting request was cut


@pytest.mark.parametrize("phase", sorted(SILENT_UPSTREAMS))
def test_first_token_timeout_holds_before_the_upstream_starts_its_answer(
        live_server, fake_openai, phase):
    fake_openai.script("ttft-silent", SILENT_UPSTREAMS[phase])
    started = time.monotonic()
    events, stored = stream(live_server, "openai/ttft-silent")
    assert time.monotonic() - started < 2.5  # the 1 s deadline, not the read timeout
    error = next(e.data for e in events if e.event == "error")
    assert (error["code"], error["retryable"]) == ("timeout", True)
    assert "within 1s" in error["message"]
    assert (stored["status"], stored["content"]) == ("error", "")
    assert fake_openai.hung_up["ttft-silent"].wait(5)


def test_first_token_timeout_holds_while_the_upstream_is_still_connecting(live_server):
    started = time.monotonic()
    events, stored = stream(live_server, "openai/connecting-past-deadline")
    assert time.monotonic() - started < 2.5  # the 1 s deadline, not the 60 s connect timeout
    error = next(e.data for e in events if e.event == "error")
    assert (error["code"], error["retryable"]) == ("timeout", True)
    assert "within 1s" in error["message"]
    assert (stored["status"], stored["content"]) == ("error", "")


def test_idle_timeout_keeps_the_text_so_far(live_server, fake_openai):
    first_two = b"".join(sse_events_of(fixture("openai/text_with_usage.sse"))[:2])
    fake_openai.script("idle-gap", Reply(first_two, then_hang=5))
    events, stored = stream(live_server, "openai/idle-gap")
    error = next(e.data for e in events if e.event == "error")
    assert error["code"] == "timeout" and "silent" in error["message"]
    assert (stored["status"], stored["content"]) == ("error", "Héllo")


def test_total_timeout_keeps_the_text_so_far(live_server, fake_openai):
    events_of_body = sse_events_of(fixture("openai/text_with_usage.sse"))
    fake_openai.script("too-long", Reply(split_at=events_of_body, delay=0.4))
    events, stored = stream(live_server, "openai/too-long")
    error = next(e.data for e in events if e.event == "error")
    assert error["code"] == "timeout" and "longer than 1s" in error["message"]
    assert stored["status"] == "error"
    assert 0 < len(stored["content"]) < len("Héllo, 世界 👋🏽 — done.")
    assert stored["content"] == text_of(events)


def test_connect_timeout(live_server):
    events, stored = stream(live_server, "openai/unconnectable")
    error = next(e.data for e in events if e.event == "error")
    assert (error["code"], error["retryable"]) == ("timeout", True)
    assert stored["status"] == "error"


# --- a model that cannot stream ------------------------------------------------------

def test_a_non_streaming_model_still_gives_a_proper_stream(live_server, fake_openai):
    fake_openai.script("no-stream", Reply(fixture("openai/completion.json"),
                                          content_type="application/json"))
    events, stored = stream(live_server, "openai/no-stream")
    assert [e.event for e in events] == ["start", "message_saved", "status", "delta", "usage",
                                         "done"]
    assert events[3].data["content"] == stored["content"] == "Héllo, 世界 👋🏽"
    sent = fake_openai.requests["no-stream"][-1]["json"]
    assert (sent["stream"], sent["temperature"], sent["max_tokens"]) == (False, 0.3, 99)


# --- tools the caller runs ----------------------------------------------------------

WEATHER_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


def test_tool_calls_end_the_turn_and_tool_results_continue_it(live_server, fake_openai):
    name = next(_names)
    model = script(fake_openai, "openai", name, recorded("openai/parallel_tool_calls.sse"),
                   recorded("openai/text_with_usage.sse"))
    thread_id = live_server.new_thread(model=model)
    events = list(read_stream(live_server.open_stream(thread_id, "Weather and time?",
                                                      tools=WEATHER_TOOLS)))
    assert [e.data["name"] for e in events if e.event == "tool_call"] == ["get_weather",
                                                                          "get_time"]
    assert events[-1].data["finish_reason"] == "tool_calls"
    assert fake_openai.requests[name][0]["json"]["tools"][0]["function"]["name"] == "get_weather"

    wrong = live_server.api("POST", f"/api/v1/threads/{thread_id}/messages", json={
        "tool_results": [{"tool_call_id": "call_W8xq", "content": "-2°C"}]})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_tools"
    assert len(live_server.messages(thread_id)) == 2  # nothing stored

    results = [{"tool_call_id": "call_W8xq", "content": "-2°C, clear"},
               {"tool_call_id": "call_T3mz", "content": "09:41"}]
    resumed = list(read_stream(live_server.api_stream(
        f"/api/v1/threads/{thread_id}/messages/stream",
        {"tool_results": results, "tools": WEATHER_TOOLS})))
    assert [e.data["message"]["role"] for e in resumed if e.event == "message_saved"] == [
        "tool", "tool"]
    assert text_of(resumed) == "Héllo, 世界 👋🏽 — done."
    sent = fake_openai.requests[name][1]["json"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_W8xq", "call_T3mz"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [
        ("call_W8xq", "-2°C, clear"), ("call_T3mz", "09:41")]
    roles = [(m["role"], m["status"]) for m in live_server.messages(thread_id)]
    assert roles == [("user", "complete"), ("assistant", "complete"), ("tool", "complete"),
                     ("tool", "complete"), ("assistant", "complete")]

    again = live_server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                            json={"tool_results": results})
    assert again.status_code == 409 and again.json()["error"]["code"] == "no_pending_tool_calls"
