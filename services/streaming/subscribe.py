"""Subscribers: what an SSE response sends, read from the event log or the database."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from ..sse import PING, encode_event
from .event_log import FINAL_EVENT, EventLog, LogUnavailable, StreamEvent


def event_pages(log: EventLog, stream_id: str, after: int,
                wait_seconds: float) -> Iterator[list[StreamEvent]]:
    """The stream's events after `after`, then live ones until `done`, a page at a time:
    all that is waiting, or an empty page after `wait_seconds` without any.

    Ends early, without `done`, if the log cannot be read (Redis is away).
    """
    while True:
        try:
            page = log.read(stream_id, after, timeout=wait_seconds)
        except LogUnavailable:
            return
        if page.events:
            after = page.events[-1].seq
            yield page.events
            if page.events[-1].type == FINAL_EVENT:
                return
        elif page.closed:
            return
        else:
            yield []


def follow(log: EventLog, stream_id: str, after: int, ping_seconds: float) -> Iterator[bytes]:
    """The stream's events after `after`, then live ones until `done`; `: ping` while idle.

    Events that are already waiting go out in one write. A client that has gone
    away is noticed when a write (an event or a ping) fails and the server
    closes this generator; the run itself is not affected. If Redis is away the
    response ends; the client resumes from its last event id later.
    """
    for page in event_pages(log, stream_id, after, ping_seconds):
        yield b"".join(event.frame for event in page) if page else PING


def stored_start(answer: dict[str, Any]) -> dict[str, Any]:
    """The `start` event of a stored answer's stream (see records.answer_view)."""
    start = {"stream_id": answer["stream_id"], "message_id": answer["message_id"],
             "thread_id": answer["thread_id"], "model": answer["model"]}
    if answer["run_id"] is not None:
        start["run_id"] = answer["run_id"]
    return start


def stored_done(answer: dict[str, Any]) -> dict[str, Any]:
    """The `done` event of a stored answer's stream, as it ended."""
    done = {"status": answer["status"], "finish_reason": answer["finish_reason"],
            "message_id": answer["message_id"], "model": answer["model"],
            "usage": answer["usage"], "metrics": answer["metrics"]}
    if answer["run_id"] is not None:
        done.update(run_id=answer["run_id"], result=answer["result"])
    return done


def _stored_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """`start`, the `sources` and the thinking it was given, each round's text as one
    `delta` followed by its `tool_call`s and the server tools' `tool_result`s, the
    `error` if it failed or was interrupted, `done`. (Statuses and usage pass: `done`
    carries the usage.)"""
    events: list[tuple[str, dict[str, Any]]] = [("start", stored_start(message))]
    if message.get("sources"):
        events.append(("sources", {"sources": message["sources"]}))
    if message.get("reasoning"):
        events.append(("reasoning", {"content": message["reasoning"]}))
    events += _rounds(message["content"], message.get("tool_calls") or (),
                      message.get("tool_results") or {})
    if message["error"]:
        events.append(("error", message["error"]))
    events.append(("done", stored_done(message)))
    return events


def _rounds(content: str, calls: Sequence[dict[str, Any]],
            results: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """An answer's text and tool calls in the order they streamed: each call records
    its round (`step`) and where that round's text ends (`offset`)."""
    events: list[tuple[str, dict[str, Any]]] = []
    start = 0
    for _, group in groupby(calls, key=lambda call: call.get("step", 1)):
        round_calls = list(group)
        end = min(max(round_calls[0].get("offset", len(content)), start), len(content))
        if content[start:end]:
            events.append(("delta", {"content": content[start:end]}))
        events += [("tool_call", {"id": call["id"], "name": call["name"],
                                  "arguments": call["arguments"],
                                  "server": bool(call.get("server"))}) for call in round_calls]
        events += [("tool_result", results[call["id"]]) for call in round_calls
                   if call["id"] in results]
        start = end
    if content[start:]:
        events.append(("delta", {"content": content[start:]}))
    return events


def stored_event_count(message: dict[str, Any]) -> int:
    """How many events `replay_stored` numbers for this message."""
    return len(_stored_events(message))


def replay_stored(message: dict[str, Any], after: int) -> Iterator[bytes]:
    """A stream whose events are gone (expired, or lost with its worker), rebuilt from
    its stored message (see `_stored_events`).

    These are numbered afresh. An `after` within that numbering resumes this replay;
    a larger one belongs to the lost original and cannot be lined up with the stored
    text, so the whole replay is sent: its `start` tells the client to begin again.
    """
    events = _stored_events(message)
    if after >= len(events):
        after = 0
    for seq, (event_type, payload) in enumerate(events, start=1):
        if seq > after:
            yield encode_event(seq, event_type, payload)


class StalledClients:
    """Drops clients that stop reading, so a subscriber is never held forever.

    While a frame is being written to a client, its subscriber is suspended at the
    `yield`; if that write has not finished after `timeout` seconds (the client
    stopped reading and every buffer on the way is full), the connection is shut
    down: the write fails as a broken pipe and the server closes the response.
    One sweeper per process looks after every subscriber; the run is not affected.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # token -> (when its current write began, its socket). Single dict operations
        # only (atomic under the GIL, never interrupted under gevent): no lock on the
        # path every frame takes.
        self._writing: dict[object, tuple[float, socket.socket]] = {}
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._sweep_forever, daemon=True, name="sluice-stalled").start()

    def stop(self) -> None:
        self._stopped.set()

    def guard(self, frames: Iterator[bytes], client: socket.socket | None) -> Iterator[bytes]:
        """`frames`, with each write to `client` watched (unwatched without a socket)."""
        if client is None:
            yield from frames
            return
        token = object()
        try:
            for frame in frames:
                self._writing[token] = (time.monotonic(), client)
                yield frame  # the server writes it before asking for the next one
                self._writing.pop(token, None)
        finally:
            self._writing.pop(token, None)

    def _sweep_forever(self) -> None:
        while not self._stopped.wait(max(0.05, self.timeout / 4)):
            self.sweep()

    def sweep(self) -> None:
        """Shut down the connections whose current write has been stuck too long."""
        now = time.monotonic()
        # The guard removes its own entry once the failed write closes the response.
        for since, client in list(self._writing.values()):
            if now - since > self.timeout:
                cut_connection(client)


def cut_connection(client: socket.socket) -> None:
    """Shut a connection down under a write that is blocked on it.

    Through a second handle on the same descriptor: the kernel wakes the blocked
    write, which then fails as a broken pipe (the server's quiet case). Shutting
    down gevent's own socket object would cancel the waiting greenlet with an
    error that servers log as a crash.
    """
    try:
        twin = socket.socket(fileno=client.fileno())
    except OSError:
        return  # already closed
    try:
        twin.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone
    finally:
        twin.detach()  # the descriptor stays its owner's to close
