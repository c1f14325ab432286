"""The event log: each stream's events in order, readable from any sequence number.

A run's producer appends; any number of subscribers read from a sequence number on
and wait for more. Events are encoded to SSE bytes once, when appended, and those
bytes are what every subscriber and every replay sends.

`MemoryEventLog` keeps the log in this process. Another backend (Redis) can take
its place behind the same interface so that any worker can serve any stream.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..sse import encode_event

FINAL_EVENT = "done"


@dataclass(frozen=True)
class StreamEvent:
    seq: int
    type: str
    frame: bytes  # the encoded SSE bytes, sent as they are


@dataclass(frozen=True)
class LogSlice:
    events: list[StreamEvent]
    closed: bool  # the stream's final event is in the log


class UnknownStream(LookupError):
    """The log has no stream with this id (never opened, or expired)."""


class EventLog(ABC):
    @abstractmethod
    def open(self, stream_id: str) -> None:
        """Start an empty log for a new stream."""

    @abstractmethod
    def append(self, stream_id: str, event_type: str, payload: dict[str, Any]) -> StreamEvent:
        """Add the next event; a `done` event closes the stream."""

    @abstractmethod
    def read(self, stream_id: str, after: int, timeout: float) -> LogSlice:
        """Events with seq > `after`, waiting up to `timeout` seconds for the first one.

        Returns at once when events are there or the stream is closed; raises
        `UnknownStream` if there is no such log.
        """

    @abstractmethod
    def has(self, stream_id: str) -> bool:
        """Whether the log holds this stream."""

    @abstractmethod
    def closed(self, stream_id: str) -> bool:
        """Whether the stream's final event is in the log."""


@dataclass
class _Stream:
    events: list[StreamEvent] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False


class MemoryEventLog(EventLog):
    """The log in process memory; closed streams are dropped `ttl_seconds` after closing."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._streams: dict[str, _Stream] = {}
        self._closed_at: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, stream_id: str) -> None:
        with self._lock:
            self._expire(time.monotonic())
            self._streams[stream_id] = _Stream()

    def append(self, stream_id: str, event_type: str, payload: dict[str, Any]) -> StreamEvent:
        stream = self._get(stream_id)
        with stream.changed:
            if stream.closed:
                raise ValueError(f"stream {stream_id} is closed")
            seq = len(stream.events) + 1
            event = StreamEvent(seq, event_type, encode_event(seq, event_type, payload))
            stream.events.append(event)
            stream.closed = event_type == FINAL_EVENT
            stream.changed.notify_all()
        if stream.closed:
            with self._lock:
                self._closed_at[stream_id] = time.monotonic()
        return event

    def read(self, stream_id: str, after: int, timeout: float) -> LogSlice:
        stream = self._get(stream_id)
        with stream.changed:
            if len(stream.events) <= after and not stream.closed:
                stream.changed.wait(timeout)
            return LogSlice(stream.events[after:], stream.closed)

    def has(self, stream_id: str) -> bool:
        with self._lock:
            self._expire(time.monotonic())
            return stream_id in self._streams

    def closed(self, stream_id: str) -> bool:
        return self._get(stream_id).closed

    def _get(self, stream_id: str) -> _Stream:
        with self._lock:
            try:
                return self._streams[stream_id]
            except KeyError:
                raise UnknownStream(stream_id) from None

    def _expire(self, now: float) -> None:
        """Drop logs closed more than the TTL ago (oldest first, so this stops early)."""
        while self._closed_at:
            stream_id, closed_at = next(iter(self._closed_at.items()))
            if now - closed_at < self.ttl_seconds:
                return
            del self._closed_at[stream_id]
            self._streams.pop(stream_id, None)
