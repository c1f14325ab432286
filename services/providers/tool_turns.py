"""Pairing a history's tool calls with their results, so every provider accepts it.

Every API wants each call it sees answered right after the turn that made it, and
each answer to name a call of that turn. A stored thread may break that: calls
nobody answered (the user wrote instead), results of a turn that is not replayed,
or a server that reuses its ids every round (always `call_0`). Pairing is by the
turn, never by the id alone; a reused id is renamed, the same way for the call and
its result, which is safe because the whole history is sent with every request.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .base import ChatMessage, ToolCall


def _fresh_id(call_id: str, position: int, used: set[str]) -> str:
    """`call_id` if no earlier turn used it, else a stable variant of it (the same for
    the same history, so that providers' prompt caches still match)."""
    candidate, attempt = call_id or "call", 0
    while candidate in used:
        attempt += 1
        candidate = f"{call_id or 'call'}_{position}" + (f"_{attempt}" if attempt > 1 else "")
    used.add(candidate)
    return candidate


def _answered_turn(turn: ChatMessage, results: Sequence[ChatMessage], position: int,
                   used: set[str]) -> list[ChatMessage]:
    """The turn with only its answered calls, then their results, each named for its call."""
    by_id = {}
    for result in results:
        by_id.setdefault(result.tool_call_id, result)
    calls: list[ToolCall] = []
    answers: list[ChatMessage] = []
    for call in turn.tool_calls:
        result = by_id.pop(call.id, None)
        if result is None:
            continue
        call_id = _fresh_id(call.id, position, used)
        calls.append(replace(call, id=call_id))
        answers.append(replace(result, tool_call_id=call_id, name=call.name))
    if not turn.content and not calls:
        return []
    return [replace(turn, tool_calls=tuple(calls)), *answers]


def pair_tool_turns(messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    """`messages` with each tool call followed by its result, and nothing unpaired.

    A call without a result is left out (its turn's text stays), as is a result that
    follows no call of the turn before it.
    """
    paired: list[ChatMessage] = []
    used: set[str] = set()
    position = 0
    while position < len(messages):
        message = messages[position]
        end = position + 1
        while end < len(messages) and messages[end].role == "tool":
            end += 1
        if message.role == "assistant" and message.tool_calls:
            paired += _answered_turn(message, messages[position + 1:end], position, used)
        elif message.role != "tool":
            paired.append(message)
            end = position + 1
        position = end
    return tuple(paired)
