"""What a thread's stored messages say to a model, and how a round of tools is stored.

An answer is one assistant message however many rounds it took: its `content` is
all of its text, and each of its `tool_calls` carries its `step` (the round it was
made in), `offset` (where that round's text ends in `content`) and `server` (Sluice
ran it). Every result is a `tool` message after it — stored as each round of
server tools ends, or posted later by the caller. History rebuilds the rounds from
that: each round's text and calls, then the results of those calls, in the order the
model saw them. A call nobody answered is left out, so no provider ever receives a
call without its result; ids a provider reused in later answers are told apart by
`pair_tool_turns`.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import insert, select, update

from .providers import ChatMessage, ToolCall
from .providers.tool_turns import pair_tool_turns
from .storage import Database, Message, Thread
from .storage.models import new_id, utcnow

_THREADS, _MESSAGES = Thread.__table__, Message.__table__
# Earlier assistant turns that ended like this are still part of the conversation.
_HISTORY_STATUSES = ("complete", "cancelled", "interrupted")


def message_row(**values: Any) -> dict[str, Any]:
    """A new row of the messages table with every column given, as an INSERT takes it."""
    now = utcnow()
    row: dict[str, Any] = dict.fromkeys(_MESSAGES.columns.keys())
    row.update({"id": new_id("msg"), "content": "", "created_at": now, "updated_at": now,
                **values})
    return row


def history(system: str | None, messages: Sequence[Any]) -> tuple[ChatMessage, ...]:
    """The conversation as providers see it: the system prompt, then each turn."""
    turns = [ChatMessage("system", system)] if system else []
    for index, message in enumerate(messages):
        if message.role == "user" and message.content:
            turns.append(ChatMessage("user", message.content))
        elif message.role == "assistant" and message.status in _HISTORY_STATUSES:
            turns += _answer_turns(message.content or "", message.tool_calls or (),
                                   _results_after(messages, index))
    return pair_tool_turns(turns)


def _results_after(messages: Sequence[Any], index: int) -> dict[str | None, Any]:
    """The tool messages right after the answer at `index`: the results of its calls."""
    results: dict[str | None, Any] = {}
    for message in messages[index + 1:]:
        if message.role != "tool":
            break
        results.setdefault(message.tool_call_id, message)
    return results


def _answer_turns(content: str, calls: Sequence[dict[str, Any]],
                  results: dict[str | None, Any]) -> list[ChatMessage]:
    """One stored answer as the turns of its rounds; each answered call is followed by
    its result (calls stored before rounds existed are all in one round, at the end)."""
    turns: list[ChatMessage] = []
    start = 0
    for _, group in groupby(calls, key=lambda call: call.get("step", 1)):
        round_calls = list(group)
        end = min(max(round_calls[0].get("offset", len(content)), start), len(content))
        answered = [call for call in round_calls if call["id"] in results]
        if not answered:
            continue  # this round's text joins the next round's
        turns.append(ChatMessage("assistant", content[start:end], tool_calls=tuple(
            ToolCall(call["id"], call["name"], call["arguments"]) for call in answered)))
        turns += [ChatMessage("tool", results[call["id"]].content, tool_call_id=call["id"],
                              name=call["name"]) for call in answered]
        start = end
    if content[start:]:
        turns.append(ChatMessage("assistant", content[start:]))
    return turns


def pending_tool_calls(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """The calls of the thread's last answer that wait for the caller's results: it
    ended asking for tools, they are the caller's own and still unanswered, and no
    message came after it (a job's, stored while the caller ran the tools, moves the
    conversation on: its results would no longer follow their calls)."""
    answers = [index for index, m in enumerate(messages) if m.role == "assistant"]
    if not answers or messages[answers[-1]].finish_reason != "tool_calls" \
            or any(m.role == "user" for m in messages[answers[-1] + 1:]):
        return []
    last = messages[answers[-1]]
    answered = _results_after(messages, answers[-1])
    return [call for call in last.tool_calls or ()
            if not call.get("server") and call["id"] not in answered]


def claim_thread(connection: Any, thread_id: str, changes: dict[str, Any]) -> None:
    """Write the thread's row first: every transaction that appends messages to a
    thread does, so they take positions one at a time (the row lock on PostgreSQL, the
    write lock on SQLite) instead of racing to the same one."""
    connection.execute(update(_THREADS).where(_THREADS.c.id == thread_id).values(changes))


def store_tool_round(db: Database, thread_id: str, message_id: str, content: str,
                     calls: list[dict[str, Any]], results: Sequence[Any]) -> None:
    """Store a round of server tools in one transaction: the answer's text and calls so
    far, and a `tool` message per result (`services.tools.ToolResult`) right after the
    answer's earlier results. A job's request stored while the answer streamed moves
    down past them, so the answer's calls and results stay together."""
    with db.engine.begin() as connection:
        claim_thread(connection, thread_id, {"updated_at": utcnow()})
        connection.execute(update(_MESSAGES).where(_MESSAGES.c.id == message_id)
                           .values(content=content, tool_calls=calls, updated_at=utcnow()))
        end = _end_of_results(connection, thread_id, message_id)
        _move_down(connection, thread_id, after=end, by=len(results))
        connection.execute(insert(_MESSAGES), [message_row(
            thread_id=thread_id, position=end + 1 + index, role="tool",
            content=result.content(), tool_call_id=result.id,
            status="error" if result.error is not None else "complete",
            error=None if result.error is None else {"code": "tool_error",
                                                     "message": result.error},
            duration_ms=result.duration_ms) for index, result in enumerate(results)])


def _end_of_results(connection: Any, thread_id: str, message_id: str) -> int:
    """The position of the answer's last stored result (its own, with none yet)."""
    answer = connection.execute(select(_MESSAGES.c.position)
                                .where(_MESSAGES.c.id == message_id)).scalar_one()
    end = answer
    for role, position in connection.execute(
            select(_MESSAGES.c.role, _MESSAGES.c.position)
            .where(_MESSAGES.c.thread_id == thread_id, _MESSAGES.c.position > answer)
            .order_by(_MESSAGES.c.position)):
        if role != "tool":
            break
        end = position
    return end


def _move_down(connection: Any, thread_id: str, after: int, by: int) -> None:
    """Move the thread's messages after position `after` down by `by`. Positions are
    unique and checked row by row, so they pass through negatives on the way."""
    if by == 0:
        return
    connection.execute(update(_MESSAGES).where(_MESSAGES.c.thread_id == thread_id,
                                               _MESSAGES.c.position > after)
                       .values(position=-_MESSAGES.c.position - by - 1))
    connection.execute(update(_MESSAGES).where(_MESSAGES.c.thread_id == thread_id,
                                               _MESSAGES.c.position < 0)
                       .values(position=-_MESSAGES.c.position - 1))
