"""Incremental summaries of a long thread's earlier messages.

Once a thread's history passes a share of its model's budget, the oldest exchanges
are summarized and later requests send the summary (as a system-side note) instead
of them. A new summary is written from the previous one plus only the messages
after it, so the cost of summarizing stays flat however long the thread grows; it
keeps the newest exchanges verbatim, about half the share, so a summary is written
every few exchanges rather than on every one. Calling the summarizer model is the
caller's: `summarize` takes it as a plain function.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..conversation import history
from ..providers import ChatMessage
from ..storage import Database, Message, ThreadSummary
from ..storage.models import isoformat, new_id, utcnow
from .budget import Fitted
from .tokens import message_tokens

_SUMMARIES, _MESSAGES = ThreadSummary.__table__, Message.__table__
NOTE = "Summary of the earlier conversation:\n\n{}"
# Each tool result is cut to this many characters in the transcript the summarizer
# reads: what a tool returned matters less than what the answer made of it.
TOOL_RESULT_CHARACTERS = 2000
INSTRUCTIONS = (
    "You keep the memory of a long conversation between a user and an assistant. "
    "Write a summary of it that the assistant can continue from: the user's goals, "
    "facts and preferences they stated, decisions made, answers given, and open "
    "questions. Keep names, numbers and identifiers exactly. Write only the summary.")
Complete = Callable[[tuple[ChatMessage, ...]], str]


@dataclass(frozen=True)
class Summary:
    """A stored summary as plain values."""

    id: str
    thread_id: str
    upto_position: int
    upto_message_id: str
    content: str
    model: str
    created_at: Any

    def to_dict(self) -> dict[str, Any]:
        return {"content": self.content, "upto_message_id": self.upto_message_id,
                "created_at": isoformat(self.created_at)}


def latest_summary(db: Session | Any, thread_id: str) -> Summary | None:
    """The thread's newest summary, read on a session or a Core connection."""
    query = (select(*_SUMMARIES.c).where(_SUMMARIES.c.thread_id == thread_id)
             .order_by(_SUMMARIES.c.upto_position.desc()).limit(1))
    row = db.execute(query).first()
    return None if row is None else Summary(**row._asdict())


def needs_summary(fitted: Fitted, share: float) -> bool:
    """Whether the history has grown past `share` of the budget (or already had to
    leave turns out), so that its oldest exchanges should be summarized."""
    return bool(fitted.dropped) or fitted.full > share * fitted.budget.available


def summary_span(messages: Sequence[Any], keep_tokens: int) -> int:
    """How many of `messages` (stored, oldest first, after any summary) to summarize:
    up to the earliest user message from which the rest fits in `keep_tokens`
    (cl100k tokens), and at least all but the last exchange."""
    starts = [index for index, message in enumerate(messages) if message.role == "user"]
    if len(starts) < 2:
        return 0
    bounds = [*starts, len(messages)]
    kept = 0
    cut = starts[-1]
    for start, end in reversed(list(zip(bounds, bounds[1:]))):
        kept += sum(message_tokens(turn) for turn in history(None, messages[start:end]))
        if kept > keep_tokens:
            break
        cut = start
    return cut if cut > starts[0] else starts[1]


def _transcript_line(turn: ChatMessage) -> str:
    if turn.role == "tool":
        content = turn.content[:TOOL_RESULT_CHARACTERS]
        more = " […]" if len(turn.content) > TOOL_RESULT_CHARACTERS else ""
        return f"Tool result ({turn.name or 'tool'}): {content}{more}"
    calls = "".join(f"\n[called {call.name} with {call.arguments}]" for call in turn.tool_calls)
    return f"{turn.role.capitalize()}: {turn.content}{calls}"


def summary_prompt(previous: str | None, turns: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
    """The summarizer's request: the previous summary, if any, and the turns after it."""
    transcript = "\n\n".join(_transcript_line(turn) for turn in turns if turn.role != "system")
    if previous:
        task = (f"The summary so far:\n\n{previous}\n\nThe conversation since then:\n\n"
                f"{transcript}\n\nWrite the summary of the whole conversation, updated.")
    else:
        task = f"The conversation:\n\n{transcript}\n\nWrite its summary."
    return (ChatMessage("system", INSTRUCTIONS), ChatMessage("user", task))


def store_summary(db: Database, thread_id: str, upto_position: int, content: str,
                  model: str) -> Summary:
    """Store a thread's new summary; it replaces the older ones, which it covers."""
    with db.engine.begin() as connection:
        upto_message_id = connection.execute(select(_MESSAGES.c.id).where(
            _MESSAGES.c.thread_id == thread_id,
            _MESSAGES.c.position == upto_position)).scalar_one()
        row = {"id": new_id("sum"), "thread_id": thread_id, "upto_position": upto_position,
               "upto_message_id": upto_message_id, "content": content, "model": model,
               "created_at": utcnow()}
        connection.execute(delete(_SUMMARIES).where(_SUMMARIES.c.thread_id == thread_id))
        connection.execute(_SUMMARIES.insert().values(**row))
    return Summary(**row)


def history_with_summary(summary: Summary | None, messages_after: Sequence[Any],
                         system: str | None = None) -> tuple[ChatMessage, ...]:
    """What a request sends of a summarized thread: the system prompt (if given), the
    summary as a system-side note, then the messages after the ones it covers."""
    note = [ChatMessage("system", NOTE.format(summary.content))] if summary else []
    turns = history(system, messages_after)
    head = 1 if system else 0
    return (*turns[:head], *note, *turns[head:])


def after_summary(summary: Summary | None, messages: Sequence[Any]) -> list[Any]:
    """The stored messages a summary does not cover."""
    return [m for m in messages if summary is None or m.position > summary.upto_position]


def _within(messages: Sequence[Any], count: int, most_tokens: int) -> int:
    """The first `count` messages, or fewer, whole exchanges from the oldest, so that
    their transcript fits `most_tokens` (at least the first exchange)."""
    starts = [i for i, message in enumerate(messages[:count]) if message.role == "user"]
    bounds = [*starts[1:], count]
    total, cut = 0, bounds[0] if bounds else count
    for start, end in zip(starts, bounds):
        total += sum(message_tokens(turn) for turn in history(None, messages[start:end]))
        if total > most_tokens:
            break
        cut = end
    return cut


def summarize(db: Database, thread_id: str, previous: Summary | None,
              messages: Sequence[Any], keep_tokens: int, complete: Complete,
              model: str, most_tokens: int | None = None) -> Summary | None:
    """Summarize the oldest of `messages` (the stored ones after `previous`) into a new
    summary, keeping about `keep_tokens` of the newest; None if there is nothing old
    enough. `complete` calls `model` without streaming and returns its text.

    With `most_tokens`, the summarizer is given at most that much of the conversation
    (the oldest exchanges): a thread that was never summarized, however long, is caught
    up over several answers instead of overflowing the summarizer's window."""
    count = summary_span(messages, keep_tokens)
    if count and most_tokens is not None:
        count = _within(messages, count, most_tokens)
    if count == 0:
        return None
    prompt = summary_prompt(previous.content if previous else None,
                            history(None, messages[:count]))
    return store_summary(db, thread_id, messages[count - 1].position, complete(prompt), model)
