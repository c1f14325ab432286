"""Answers that run server tools: rounds of parallel calls in each provider's format,
tools that fail, the limits of an answer, cancelling a running tool, and mixing
server tools with the caller's own."""
from __future__ import annotations

import json
import time

import pytest

from services.jobs import jobs
from services.streaming import streaming

from .fake_upstream import FakeUpstream
from .sse_client import read_test_response
from .test_documents import upload
from .tool_plugins.loop_tools import GATE, SLOW_SAW_CANCEL
from .wire_checks import CHECKS
from .fake_upstream import openai_text_reply
from .wire_replies import ROUNDS, ollama_calls, ollama_text, openai_calls
from .webhook_receiver import receiver as _receiver

PROVIDERS = list(ROUNDS)
hook = pytest.fixture(_receiver)
CALLER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}


def lookup(key: str) -> tuple[str, str]:
    return ("lookup", json.dumps({"key": key}))


@pytest.fixture
def client(make_app, fake_openai: FakeUpstream):
    app = make_app(ANTHROPIC_BASE_URL=fake_openai.url, ANTHROPIC_API_KEY="sk-ant-test",
                   OLLAMA_HOST=fake_openai.url,
                   SLUICE_TOOL_MODULES=("tests.tool_plugins.loop_tools",))
    return app.test_client()


def new_thread(client) -> str:
    return client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]


def stream(client, thread_id: str, **body) -> list:
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream", json=body)
    assert response.status_code == 200, response.get_json()
    return read_test_response(response)


def messages(client, thread_id: str) -> list[dict]:
    return client.get(f"/api/v1/threads/{thread_id}/messages").get_json()["messages"]


def kinds(events: list) -> list[str]:
    """Event names, with a status's stage, and runs of deltas as one."""
    named = [f"status:{e.data['stage']}" if e.event == "status" else e.event for e in events]
    return [name for i, name in enumerate(named) if not (name == "delta" and i and
                                                        named[i - 1] == "delta")]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_three_rounds_of_two_parallel_calls(client, fake_openai, provider):
    calls, text = ROUNDS[provider]
    model = f"loop-three-{provider}"
    fake_openai.script(model, calls(lookup("a"), lookup("b")), calls(lookup("c"), lookup("d")),
                       calls(lookup("e"), lookup("f")), text("All six are fine."),
                       text("Yes."))
    thread_id = new_thread(client)
    events = stream(client, thread_id, content="Check a to f.", model=f"{provider}/{model}",
                    tools=["lookup"])

    one_round = ["tool_call", "tool_call", "status:tool_running", "tool_result", "tool_result"]
    assert kinds(events) == [
        "start", "message_saved", "status:connecting", *one_round,
        "status:step", "status:connecting", *one_round,
        "status:step", "status:connecting", *one_round,
        "status:step", "status:connecting", "delta", "usage", "done"]
    assert all(e.data["server"] for e in events if e.event == "tool_call")
    results = [e.data for e in events if e.event == "tool_result"]
    assert sorted(r["result"] for r in results) == [f"lookup: {k} is fine" for k in "abcdef"]
    assert all(r["duration_ms"] >= 0 for r in results)
    done = events[-1].data
    assert (done["status"], done["finish_reason"]) == ("complete", "stop")
    # Four rounds of 4 tokens (the OpenAI text reply reports none).
    assert done["usage"]["output_tokens"] == (12 if provider == "openai" else 16)

    stored = messages(client, thread_id)
    assert [m["role"] for m in stored] == ["user", "assistant", *["tool"] * 6]
    answer = stored[1]
    assert answer["content"] == "All six are fine."
    assert [c["step"] for c in answer["tool_calls"]] == [1, 1, 2, 2, 3, 3]
    assert len({c["id"] for c in answer["tool_calls"]}) == 6  # unique, whatever the provider did
    assert {m["tool_call_id"] for m in stored[2:]} == {c["id"] for c in answer["tool_calls"]}

    # A later turn sends the whole conversation, rounds and results in order.
    stream(client, thread_id, content="Sure?", model=f"{provider}/{model}", tools=["lookup"])
    bodies = [r["json"] for r in fake_openai.requests[model]]
    assert len(bodies) == 5
    for body in bodies:
        CHECKS[provider](body)
    assert json.dumps(bodies[3]).count("is fine") == 6 and "Sure?" in json.dumps(bodies[4])
    assert json.dumps(bodies[4]).count("is fine") == 6


def test_a_server_tool_the_request_did_not_offer_never_runs(client, fake_openai):
    """The model may call any name; only the tools offered to it run. `lookup` exists on
    this server, but the request offered `boom` alone."""
    model = "loop-unoffered"
    fake_openai.script(model, openai_calls(("lookup", '{"key": "a"}'), ("boom", "{}")),
                       openai_text_reply("Done."))
    thread_id = new_thread(client)
    events = stream(client, thread_id, content="Try.", model=f"openai/{model}", tools=["boom"])
    results = {e.data["name"]: e.data for e in events if e.event == "tool_result"}
    assert "result" not in results["lookup"]
    assert results["lookup"]["error"] == "there is no server tool 'lookup' in this answer"
    assert results["boom"]["error"] == "boom: the gauge is broken"  # the offered one ran
    sent = fake_openai.requests[model][0]["json"]
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["boom"]
    assert events[-1].data["status"] == "complete"


def test_tools_that_fail_tell_the_model_and_the_answer_goes_on(client, fake_openai):
    model = "loop-failures"
    fake_openai.script(model, openai_calls(("lookup", '{"key": 5}'), ("lookup", "not json"),
                                           ("boom", "{}"), ("sleepy", "{}"), ("flood", "{}"),
                                           ("nowhere", "{}")),
                       openai_text_reply("I could not check."))
    thread_id = new_thread(client)
    started = time.monotonic()
    events = stream(client, thread_id, content="Try everything.", model=f"openai/{model}",
                    tools=["lookup", "boom", "sleepy", "flood"])
    assert time.monotonic() - started < 1.5  # the sleepy tool's 0.3 s timeout, not its 2 s
    errors = [e.data["error"] for e in events if e.event == "tool_result"]
    assert len(errors) == 6 and all(errors)
    text = " ".join(errors)
    for expected in ("key", "JSON", "boom: the gauge is broken", "timed out", "100",
                     "nowhere"):
        assert expected in text, (expected, text)
    assert events[-1].data["status"] == "complete"
    sent = fake_openai.requests[model][1]["json"]["messages"]
    assert [m["content"].startswith("Error: ") for m in sent if m["role"] == "tool"] == [True] * 6
    stored = messages(client, thread_id)
    assert [m["status"] for m in stored if m["role"] == "tool"] == ["error"] * 6
    assert stored[1]["content"] == "I could not check."


@pytest.mark.parametrize(("limits", "limit", "rounds_sent"), [
    ({"max_rounds": 2}, "max_rounds", 2),
    ({"max_tool_calls": 3}, "max_tool_calls", 2),
    ({"max_tokens": 6}, "max_tokens", 2),
])
def test_each_limit_ends_the_answer_cleanly(client, fake_openai, limits, limit, rounds_sent):
    model = f"loop-limit-{limit}"
    fake_openai.script(model, ollama_calls(lookup("a"), lookup("b")),
                       ollama_calls(lookup("c"), lookup("d")), ollama_text("Never sent."))
    thread_id = new_thread(client)
    events = stream(client, thread_id, content="Go.", model=f"ollama/{model}",
                    tools=["lookup"], limits=limits)
    done = events[-1].data
    assert (done["status"], done["finish_reason"], done["limit"]) == ("complete", "length", limit)
    assert len(fake_openai.requests[model]) == rounds_sent
    ran = [e.data["id"] for e in events if e.event == "tool_result"]
    assert len(ran) == 2  # the second round's calls did not run
    stored = messages(client, thread_id)
    assert stored[1]["status"] == "complete" and stored[1]["finish_reason"] == "length"
    assert [m["tool_call_id"] for m in stored[2:]] == ran
    if limit == "max_tokens":  # the second round may only spend what is left
        assert fake_openai.requests[model][1]["json"]["options"]["num_predict"] == 2


@pytest.mark.parametrize(("limits", "most"), [
    ({"max_rounds": 99}, "at most 8"),
    # No max_tokens in the models file: the model's context window is the ceiling, so
    # a provider is never sent 2**63 (its API would refuse it).
    ({"max_tokens": 2**63}, "at most 128000"),
])
def test_a_limit_above_the_models_is_refused(client, limits, most):
    thread_id = new_thread(client)
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream", json={
        "content": "Go.", "model": "openai/gpt-4o-mini", "limits": limits})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_limits"
    assert most in response.get_json()["error"]["message"]
    assert messages(client, thread_id) == []


def test_the_wall_time_limit_stops_a_running_tool(client, fake_openai):
    model = "loop-seconds"
    fake_openai.script(model, openai_calls(("slow", "{}")))
    thread_id = new_thread(client)
    started = time.monotonic()
    events = stream(client, thread_id, content="Wait.", model=f"openai/{model}",
                    tools=["slow"], limits={"max_seconds": 1})
    assert time.monotonic() - started < 2
    done = events[-1].data
    assert (done["status"], done["finish_reason"], done["limit"]) == \
        ("complete", "length", "max_seconds")
    assert "tool_result" not in kinds(events)


def test_cancel_during_a_slow_tool_ends_within_a_second(client, fake_openai):
    model = "loop-cancel"
    fake_openai.script(model, openai_calls(("slow", "{}"), lookup("a")))
    thread_id = new_thread(client)
    SLOW_SAW_CANCEL.clear()
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream",
                           json={"content": "Wait.", "model": f"openai/{model}",
                                 "tools": ["slow", "lookup"]}, buffered=False)
    frames = iter(response.response)
    seen = []
    for event in read_test_response_lazily(frames):
        seen.append(event)
        if event.event == "tool_result":  # lookup's: slow runs on until the cancel
            break
    stream_id = seen[0].data["stream_id"]
    cancelled_at = time.monotonic()
    assert client.post(f"/api/v1/streams/{stream_id}/cancel").status_code == 202
    rest = list(read_test_response_lazily(frames))
    assert time.monotonic() - cancelled_at < 1.0
    assert rest[-1].data["status"] == "cancelled"
    assert "slow" not in [e.data["name"] for e in rest if e.event == "tool_result"]
    assert SLOW_SAW_CANCEL.wait(1)
    stored = messages(client, thread_id)
    assert stored[1]["status"] == "cancelled"
    # The result the client was shown is kept; the running tool's is dropped.
    shown = [e.data["result"] for e in seen + rest if e.event == "tool_result"]
    assert [m["content"] for m in stored if m["role"] == "tool"] == shown == [
        "lookup: a is fine"]


def test_a_job_sent_while_tools_run_waits_behind_the_answers_results(make_app, fake_openai,
                                                                     hook):
    """A message with `callback_url` may be sent to a thread whose answer is running a
    tool: it is stored at once and answered after, and the answer's results still sit
    right after the answer, so every later request pairs them (before, the two took
    the same position: the job was a 500 or the round a `storage_error`)."""
    app = make_app(SLUICE_WEBHOOK_ALLOW_PRIVATE="on",
                   SLUICE_TOOL_MODULES=("tests.tool_plugins.loop_tools",))
    jobs(app).start(workers=1)
    client = app.test_client()
    hook.secret = client.post("/api/v1/webhooks/secret").get_json()["secret"]
    model = "loop-queue"
    fake_openai.script(model, openai_calls(("gate", "{}")), openai_text_reply("Past the gate."),
                       openai_text_reply("The job's answer."))
    thread_id = new_thread(client)
    GATE.clear()
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream",
                           json={"content": "Wait.", "model": f"openai/{model}",
                                 "tools": ["gate"]}, buffered=False)
    frames = iter(response.response)
    for event in read_test_response_lazily(frames):
        if event.event == "status" and event.data["stage"] == "tool_running":
            break
    queued = client.post(f"/api/v1/threads/{thread_id}/messages",
                         json={"content": "And then?", "model": f"openai/{model}",
                               "callback_url": hook.url})
    assert queued.status_code == 202, queued.get_json()
    GATE.set()
    assert list(read_test_response_lazily(frames))[-1].data["status"] == "complete"
    job_id = queued.get_json()["job"]["id"]
    deadline = time.monotonic() + 20
    while client.get(f"/api/v1/jobs/{job_id}").get_json()["job"]["status"] != "complete":
        assert time.monotonic() < deadline, "the job was not answered"
        time.sleep(0.05)
    stored = messages(client, thread_id)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Wait."), ("assistant", "Past the gate."), ("tool", "gate: open"),
        ("user", "And then?"), ("assistant", "The job's answer.")]
    sent = fake_openai.requests[model][2]["json"]
    CHECKS["openai"](sent)
    assert [m["role"] for m in sent["messages"]] == [
        "user", "assistant", "tool", "assistant", "user"]


def test_a_replay_from_storage_keeps_the_rounds_tools_and_sources(make_app, fake_openai):
    """Once the event log has expired, the stream is rebuilt from the stored answer: each
    round's text, its calls and the server tools' results come back in order, as the
    client saw them live (statuses and usage, which storage does not keep, aside)."""
    app = make_app(SLUICE_EVENT_TTL_SECONDS=1,
                   SLUICE_TOOL_MODULES=("tests.tool_plugins.loop_tools",))
    client = app.test_client()
    model = "loop-replay"
    fake_openai.script(model, openai_calls(lookup("a"), ("boom", "{}"), text="Checking. "),
                       openai_calls(lookup("b"), text="One more. "),
                       openai_text_reply("Both are fine."))
    document = upload(client, "handbook.md", b"# Gear\n\nEvery new hire gets a blue backpack.")
    assert document.status_code == 201, document.get_json()
    thread_id = new_thread(client)
    live = stream(client, thread_id, content="Which backpack do new hires get?",
                  model=f"openai/{model}", tools=["lookup", "boom"])
    stream_id = live[0].data["stream_id"]
    time.sleep(1.5)
    assert not streaming(app).log.has(stream_id)
    replayed = read_test_response(client.get(f"/api/v1/streams/{stream_id}/events"))

    def seen(events):
        kept = [(e.event, {k: v for k, v in e.data.items() if k not in ("seq", "type")})
                for e in events if e.event not in ("status", "usage", "message_saved")]
        merged = []
        for event, data in kept:  # a round's deltas as one
            if event == "delta" and merged and merged[-1][0] == "delta":
                merged[-1] = ("delta", {"content": merged[-1][1]["content"] + data["content"]})
            else:
                merged.append((event, data))
        return merged
    assert [e.id for e in replayed] == list(range(1, len(replayed) + 1))
    assert seen(replayed)[:-1] == seen(live)[:-1]
    assert [e.event for e in replayed] == [
        "start", "sources", "delta", "tool_call", "tool_call", "tool_result", "tool_result",
        "delta", "tool_call", "tool_result", "delta", "done"]
    assert replayed[-1].data["status"] == live[-1].data["status"] == "complete"
    assert "".join(e.data["content"] for e in replayed if e.event == "delta") == \
        "Checking. One more. Both are fine."


def read_test_response_lazily(frames):
    """Events of a streamed test response as they come, from an iterator of its bytes."""
    from services.sse import SSEDecoder
    from .sse_client import Received
    for event in SSEDecoder(frames):
        yield Received(int(event.id), event.event, event.json())


def test_a_message_sent_meanwhile_ends_the_wait_for_the_callers_results(make_app, fake_openai):
    """The answer asked the caller to run a tool; before the results came, a message was
    sent as a job (stored, not yet answered). The results would no longer follow their
    call, and no model would be sent them: they are refused as after any message."""
    client = make_app(SLUICE_WEBHOOK_ALLOW_PRIVATE="on").test_client()  # no job worker
    model = "loop-overtaken"
    fake_openai.script(model, openai_calls(("get_weather", '{"city": "Oslo"}')))
    thread_id = new_thread(client)
    events = stream(client, thread_id, content="Weather?", model=f"openai/{model}",
                    tools=[CALLER_TOOL])
    [call] = [e.data for e in events if e.event == "tool_call"]
    queued = client.post(f"/api/v1/threads/{thread_id}/messages",
                         json={"content": "Never mind.", "callback_url": "http://127.0.0.1:9/"})
    assert queued.status_code == 202
    late = client.post(f"/api/v1/threads/{thread_id}/messages", json={
        "tool_results": [{"tool_call_id": call["id"], "content": "-3°C"}],
        "tools": [CALLER_TOOL]})
    assert late.status_code == 409 and late.get_json()["error"]["code"] == "no_pending_tool_calls"
    assert [m["role"] for m in messages(client, thread_id)] == ["user", "assistant", "user"]


def test_server_and_caller_tools_mixed_end_the_turn_for_the_caller(client, fake_openai):
    model = "loop-mixed"
    fake_openai.script(model, openai_calls(lookup("a"), ("get_weather", '{"city": "Oslo"}')),
                       openai_text_reply("Oslo is fine."))
    thread_id = new_thread(client)
    events = stream(client, thread_id, content="Both.", model=f"openai/{model}",
                    tools=["lookup", CALLER_TOOL])
    calls = {e.data["name"]: e.data for e in events if e.event == "tool_call"}
    assert calls["lookup"]["server"] and not calls["get_weather"]["server"]
    assert [e.data["name"] for e in events if e.event == "tool_result"] == ["lookup"]
    assert events[-1].data["finish_reason"] == "tool_calls"
    wrong = client.post(f"/api/v1/threads/{thread_id}/messages", json={"tool_results": [
        {"tool_call_id": calls["lookup"]["id"], "content": "mine"}]})
    assert wrong.status_code == 400  # only the caller's own call is pending
    reply = client.post(f"/api/v1/threads/{thread_id}/messages", json={
        "tool_results": [{"tool_call_id": calls["get_weather"]["id"],
                          "content": "get_weather: -3°C"}],
        "model": f"openai/{model}", "tools": ["lookup", CALLER_TOOL]})
    assert reply.status_code == 200 and reply.get_json()["response"]["content"] == "Oslo is fine."
    sent = fake_openai.requests[model][1]["json"]
    CHECKS["openai"](sent)
    assert [m["content"] for m in sent["messages"] if m["role"] == "tool"] == [
        "lookup: a is fine", "get_weather: -3°C"]


def test_a_function_named_like_a_server_tool_the_model_is_offered_is_refused(client):
    """The demo model is offered `calculator` by the models file: a caller's function of
    that name would never reach the caller (Sluice would run its own), so it is a 400,
    as it is when the request names both; nothing is stored."""
    thread_id = new_thread(client)
    clash = {"type": "function", "function": {"name": "calculator"}}
    for body in ({"content": "6*7?", "tools": [clash]},
                 {"content": "6*7?", "tools": ["calculator", clash]}):
        response = client.post(f"/api/v1/threads/{thread_id}/messages", json=body)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_tools"
        error = response.get_json()["error"]
        assert "'calculator' has the name of a server tool" in error["message"]
    assert messages(client, thread_id) == []


def test_the_demo_model_stops_at_max_tokens_like_a_real_one(client):
    thread_id = new_thread(client)
    events = stream(client, thread_id, content="Tell me about rivers.",
                    limits={"max_tokens": 12})
    done = events[-1].data
    assert (done["status"], done["finish_reason"], done["limit"]) == (
        "complete", "length", "max_tokens")
    assert done["usage"]["output_tokens"] == 12
    assert len([e for e in events if e.event == "delta"]) == 12


def test_the_demo_model_uses_tools_with_no_key(client):
    thread_id = new_thread(client)
    events = stream(client, thread_id, content="What time is it, and what is 6*7?")
    results = {e.data["name"]: e.data for e in events if e.event == "tool_result"}
    assert results["calculator"]["result"] == "42"
    assert "time" in results["current_time"]["result"]
    text = "".join(e.data["content"] for e in events if e.event == "delta")
    assert "`calculator` `6*7` answered: 42" in text
    assert messages(client, thread_id)[1]["content"] == text
