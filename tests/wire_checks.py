"""What each provider's API demands of a request's tool turns, checked on recorded bodies.

Each check takes one request body as the fake upstream received it and fails with
what is wrong. They hold for any conversation whose tool results begin with the
name of the tool that produced them (as the end-to-end tests write them), which is
how a result answered under the wrong call shows up whatever the wire format.
"""
from __future__ import annotations

from typing import Any


def _check_result(name: str, content: Any) -> None:
    assert isinstance(content, str) and content.startswith(name), (
        f"a result of {content!r} is sent as the answer to a call of {name}")


def openai_chat(body: dict[str, Any]) -> None:
    """Chat Completions: unique call ids; right after an assistant turn with calls, one
    tool message per call and none for anything else."""
    messages, seen = body["messages"], set()
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            assert index and messages[index - 1]["role"] in ("assistant", "tool"), message
        calls = message.get("tool_calls") or []
        if not calls:
            continue
        ids = [call["id"] for call in calls]
        assert seen.isdisjoint(ids) and len(set(ids)) == len(ids), f"ids repeat: {ids}"
        seen.update(ids)
        answers = messages[index + 1:index + 1 + len(calls)]
        assert [a["role"] for a in answers] == ["tool"] * len(calls), "a call is unanswered"
        names = {call["id"]: call["function"]["name"] for call in calls}
        assert {a["tool_call_id"] for a in answers} == set(names)
        for answer in answers:
            _check_result(names[answer["tool_call_id"]], answer["content"])
    orphans = sum(m["role"] == "tool" for m in messages) - sum(
        len(m.get("tool_calls") or []) for m in messages)
    assert orphans == 0, "a tool message answers no call"


def responses(body: dict[str, Any]) -> None:
    """Responses: unique call ids; each function_call answered once by a later
    function_call_output, and each output answering a call."""
    calls: dict[str, str] = {}
    answered: set[str] = set()
    for item in body["input"]:
        if item.get("type") == "function_call":
            assert item["call_id"] not in calls, f"call id {item['call_id']} repeats"
            calls[item["call_id"]] = item["name"]
        elif item.get("type") == "function_call_output":
            assert item["call_id"] in calls and item["call_id"] not in answered, item
            answered.add(item["call_id"])
            _check_result(calls[item["call_id"]], item["output"])
    assert answered == set(calls), "a call is unanswered"


def anthropic(body: dict[str, Any]) -> None:
    """Messages API: user first, roles alternate, tool blocks only with their tools, each
    tool_use answered in the next turn (results first there), ids unique."""
    offered = {tool["name"] for tool in body.get("tools") or ()}
    turns, seen = body["messages"], set()
    assert turns and turns[0]["role"] == "user"
    for index, turn in enumerate(turns):
        assert index == 0 or turn["role"] != turns[index - 1]["role"], "roles do not alternate"
        blocks = turn["content"] if isinstance(turn["content"], list) else []
        assert turn["content"] and all(b.get("text") != "" for b in blocks), "empty content"
        kinds = [block["type"] for block in blocks]
        assert kinds == sorted(kinds, key=lambda kind: kind != "tool_result")
        uses = {b["id"]: b["name"] for b in blocks if b["type"] == "tool_use"}
        assert set(uses.values()) <= offered, f"tool blocks without their tools: {uses}"
        assert seen.isdisjoint(uses), f"ids repeat: {sorted(uses)}"
        seen.update(uses)
        results = [b for b in blocks if b["type"] == "tool_result"]
        earlier = turns[index - 1]["content"] if index else []
        asked = {b["id"]: b["name"] for b in earlier if isinstance(b, dict)
                 and b["type"] == "tool_use"}
        assert {r["tool_use_id"] for r in results} == set(asked), "results do not match calls"
        for result in results:
            _check_result(asked[result["tool_use_id"]], result["content"])
    last = turns[-1]["content"]
    assert not (isinstance(last, list) and turns[-1]["role"] == "assistant"
                and any(b["type"] == "tool_use" for b in last)), "a call is unanswered"


def ollama(body: dict[str, Any]) -> None:
    """Ollama pairs by order and name: after a turn with calls, one tool message per
    call, in order, each with that call's `tool_name`."""
    messages = body["messages"]
    for index, message in enumerate(messages):
        calls = message.get("tool_calls") or []
        answers = messages[index + 1:index + 1 + len(calls)]
        assert [a["role"] for a in answers] == ["tool"] * len(calls), "a call is unanswered"
        for call, answer in zip(calls, answers):
            assert answer.get("tool_name") == call["function"]["name"], answer
            _check_result(call["function"]["name"], answer["content"])
    assert sum(m["role"] == "tool" for m in messages) == sum(
        len(m.get("tool_calls") or []) for m in messages), "a tool message answers no call"


CHECKS = {"openai": openai_chat, "openai-responses": responses, "anthropic": anthropic,
          "ollama": ollama}
