"""Caller-run tools over several rounds, then another provider: every request stays valid.

Each provider's fake answers in its own wire format, with its own habits with ids:
Ollama sends none, the OpenAI-compatible server here reuses `call_0` every round,
Anthropic and Responses send fresh ones. Whatever they do, each request Sluice
sends must pair every call with its own result (tests/wire_checks.py).
"""
from __future__ import annotations

import json

import pytest

from services.providers.base import ChatMessage, ToolCall
from services.providers.tool_turns import pair_tool_turns

from .fake_upstream import FakeUpstream, openai_text_reply
from .wire_checks import CHECKS
from .wire_replies import OSLO, ROUNDS, openai_calls

TOOLS = [{"type": "function", "function": {
    "name": name, "description": f"{name} of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    for name in ("get_weather", "get_time")]
PROVIDERS = list(ROUNDS)


@pytest.fixture
def client(make_app, fake_openai: FakeUpstream):
    app = make_app(ANTHROPIC_BASE_URL=fake_openai.url, ANTHROPIC_API_KEY="sk-ant-test",
                   OLLAMA_HOST=fake_openai.url)
    return app.test_client()


def _answer_calls(client, thread_id: str, model: str, response: dict) -> dict:
    """Run the answer's calls: each result begins with its tool's name."""
    results = [{"tool_call_id": call["id"], "content": f"{call['name']}: fine in Oslo"}
               for call in response["tool_calls"]]
    reply = client.post(f"/api/v1/threads/{thread_id}/messages",
                        json={"tool_results": results, "model": model, "tools": TOOLS})
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["response"]


@pytest.mark.parametrize("second_has_tools", [False, True], ids=["then-no-tools", "then-tools"])
@pytest.mark.parametrize("first", PROVIDERS)
def test_two_tool_rounds_then_another_provider(client, fake_openai, first, second_has_tools):
    second = PROVIDERS[(PROVIDERS.index(first) + 1) % len(PROVIDERS)]
    names = {p: f"turns-{p}-{first}-{second_has_tools}" for p in (first, second)}
    calls, text = ROUNDS[first]
    fake_openai.script(names[first], calls(("get_weather", OSLO)), calls(("get_time", OSLO)),
                       text("Fine."))
    fake_openai.script(names[second], ROUNDS[second][1]("Both were fine."))
    model = f"{first}/{names[first]}"
    thread_id = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]

    answer = client.post(f"/api/v1/threads/{thread_id}/messages",
                         json={"content": "Weather and time in Oslo?", "model": model,
                               "tools": TOOLS}).get_json()["response"]
    assert [c["name"] for c in answer["tool_calls"]] == ["get_weather"]
    answer = _answer_calls(client, thread_id, model, answer)
    assert [c["name"] for c in answer["tool_calls"]] == ["get_time"]
    answer = _answer_calls(client, thread_id, model, answer)
    assert answer["content"] == "Fine."

    switch = {"content": "Thanks! Summarise.", "model": f"{second}/{names[second]}",
              **({"tools": TOOLS} if second_has_tools else {})}
    answer = client.post(f"/api/v1/threads/{thread_id}/messages", json=switch).get_json()
    assert answer["response"]["content"] == "Both were fine.", answer

    sent = {p: [r["json"] for r in fake_openai.requests[names[p]]] for p in (first, second)}
    assert (len(sent[first]), len(sent[second])) == (3, 1)
    for provider, bodies in sent.items():
        for body in bodies:
            CHECKS[provider](body)
    assert "Summarise" in json.dumps(sent[second][0])
    assert json.dumps(sent[second][0]).count("fine in Oslo") == 2  # both rounds' results


def test_a_new_message_leaves_out_calls_nobody_answered(client, fake_openai):
    """A call answered with a new message instead of results is not sent as answered,
    even when a later round reuses its id (`call_0`)."""
    name = "turns-unanswered"
    fake_openai.script(name, openai_calls(("get_weather", OSLO)), openai_text_reply("Okay."),
                       openai_calls(("get_time", OSLO)), openai_text_reply("Done."))
    model = f"openai/{name}"
    thread_id = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]
    post = f"/api/v1/threads/{thread_id}/messages"
    client.post(post, json={"content": "Weather?", "model": model, "tools": TOOLS})
    client.post(post, json={"content": "Never mind.", "model": model, "tools": TOOLS})
    answer = client.post(post, json={"content": "Time?", "model": model,
                                     "tools": TOOLS}).get_json()["response"]
    _answer_calls(client, thread_id, model, answer)
    bodies = [r["json"] for r in fake_openai.requests[name]]
    for body in bodies:
        CHECKS["openai"](body)
    assert "get_weather" not in json.dumps(bodies[-1]["messages"])


def test_reused_ids_are_renamed_for_call_and_result_alike():
    call = ToolCall("call_0", "get_weather", "{}")
    again = ToolCall("call_0", "get_time", "{}")
    history = pair_tool_turns((
        ChatMessage("user", "Weather?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "sunny", tool_call_id="call_0"),
        ChatMessage("assistant", "", tool_calls=(again,)),
        ChatMessage("tool", "noon", tool_call_id="call_0"),
        ChatMessage("tool", "stray", tool_call_id="call_9"),
    ))
    first, second = history[1].tool_calls[0], history[3].tool_calls[0]
    assert first.id == "call_0" and second.id not in ("call_0", "")
    assert [(m.tool_call_id, m.name, m.content) for m in history if m.role == "tool"] == [
        ("call_0", "get_weather", "sunny"), (second.id, "get_time", "noon")]
    assert pair_tool_turns(history) == history  # stable: the same history, the same ids
