"""Subscribers: what an SSE response sends, read from the event log or the database."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..sse import PING, encode_event
from .event_log import FINAL_EVENT, EventLog


def follow(log: EventLog, stream_id: str, after: int, ping_seconds: float) -> Iterator[bytes]:
    """The stream's events after `after`, then live ones until `done`; `: ping` while idle.

    Events that are already waiting go out in one write. A client that has gone
    away is noticed when a write (an event or a ping) fails and the server
    closes this generator; the run itself is not affected.
    """
    while True:
        page = log.read(stream_id, after, timeout=ping_seconds)
        if page.events:
            after = page.events[-1].seq
            yield b"".join(event.frame for event in page.events)
            if page.events[-1].type == FINAL_EVENT:
                return
        elif page.closed:
            return
        else:
            yield PING


def replay_stored(message: dict[str, Any], after: int) -> Iterator[bytes]:
    """A finished stream whose events are gone, rebuilt from its stored message.

    `start`, the whole text as one `delta` (if any), the `error` if it failed or
    was interrupted, `done`: numbered afresh, so `after` counts in this shorter sequence.
    """
    events: list[tuple[str, dict[str, Any]]] = [
        ("start", {"stream_id": message["stream_id"], "message_id": message["id"],
                   "thread_id": message["thread_id"], "model": message["model"]}),
    ]
    if message["content"]:
        events.append(("delta", {"content": message["content"]}))
    if message["error"]:
        events.append(("error", message["error"]))
    events.append(("done", {
        "status": message["status"], "finish_reason": message["finish_reason"],
        "message_id": message["id"], "model": message["model"],
        "usage": message["usage"], "metrics": message["metrics"]}))
    for seq, (event_type, payload) in enumerate(events, start=1):
        if seq > after:
            yield encode_event(seq, event_type, payload)
