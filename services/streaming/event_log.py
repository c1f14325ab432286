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

from ..errors import ApiError
from ..sse import encode_event

FINAL_EVENT = "done"
# What an event costs in memory besides its frame's bytes (the objects around it), so
# that a byte bound on the log bounds the memory it holds.
EVENT_OVERHEAD = 120


@dataclass(frozen=True, slots=True)
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


class LogUnavailable(ApiError):
    """The shared log (Redis) cannot be reached now; the request may be sent again."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, "unavailable",
                         "Sluice's event store (Redis) is not reachable; try again shortly.")
        self.reason = reason


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

    def available(self) -> bool:
        """Whether new streams can be written now (a shared log may be unreachable)."""
        return True

    def stop(self) -> None:
        """Stop background work (tests; the process is going away)."""


@dataclass
class _Stream:
    events: list[StreamEvent] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False
    size: int = 0  # bytes it holds: its frames, and what each event costs around them


class MemoryEventLog(EventLog):
    """The log in process memory. Closed streams are dropped `ttl_seconds` after they
    close, or sooner, oldest first, while closed streams hold more than `max_bytes`
    of frames together; a later resume is answered from storage."""

    def __init__(self, ttl_seconds: float, max_bytes: int = 8 * 1024 * 1024) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self._streams: dict[str, _Stream] = {}
        self._closed_at: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._closed_bytes = 0
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
            self._add(stream, event)
        if stream.closed:
            self._closing(stream_id, stream)
        return event

    def insert(self, stream_id: str, events: list[StreamEvent]) -> None:
        """Add events numbered elsewhere (a copy of another process's stream); those
        already here are skipped, so the copy stays gapless."""
        stream = self._get(stream_id)
        with stream.changed:
            for event in events:
                if event.seq == len(stream.events) + 1 and not stream.closed:
                    self._add(stream, event)
        if stream.closed:
            self._closing(stream_id, stream)

    @staticmethod
    def _add(stream: _Stream, event: StreamEvent) -> None:
        """Under the stream's lock."""
        stream.events.append(event)
        stream.size += len(event.frame) + EVENT_OVERHEAD
        stream.closed = event.type == FINAL_EVENT
        stream.changed.notify_all()

    def _closing(self, stream_id: str, stream: _Stream) -> None:
        with self._lock:
            if stream_id in self._closed_at or self._streams.get(stream_id) is not stream:
                return
            self._closed_at[stream_id] = (time.monotonic(), stream.size)
            self._closed_bytes += stream.size
            self._expire(time.monotonic())

    def read(self, stream_id: str, after: int, timeout: float) -> LogSlice:
        stream = self._get(stream_id)
        with stream.changed:
            if len(stream.events) <= after and not stream.closed:
                stream.changed.wait(timeout)
            return LogSlice(stream.events[after:], stream.closed)

    def last_seq(self, stream_id: str) -> int:
        stream = self._get(stream_id)
        with stream.changed:
            return len(stream.events)

    def has(self, stream_id: str) -> bool:
        with self._lock:
            self._expire(time.monotonic())
            return stream_id in self._streams

    def closed(self, stream_id: str) -> bool:
        return self._get(stream_id).closed

    def drop(self, stream_id: str) -> None:
        """Forget a stream now (a copy nobody reads any more)."""
        with self._lock:
            self._streams.pop(stream_id, None)
            closed = self._closed_at.pop(stream_id, None)
            if closed is not None:
                self._closed_bytes -= closed[1]

    @property
    def closed_bytes(self) -> int:
        """Bytes of frames held for streams that have ended."""
        with self._lock:
            return self._closed_bytes

    def _get(self, stream_id: str) -> _Stream:
        with self._lock:
            try:
                return self._streams[stream_id]
            except KeyError:
                raise UnknownStream(stream_id) from None

    def _expire(self, now: float) -> None:
        """Under the lock: drop closed logs past the TTL or over the byte bound, oldest
        first (so this stops at the first one that stays)."""
        while self._closed_at:
            stream_id, (closed_at, size) = next(iter(self._closed_at.items()))
            if now - closed_at < self.ttl_seconds and self._closed_bytes <= self.max_bytes:
                return
            del self._closed_at[stream_id]
            self._closed_bytes -= size
            self._streams.pop(stream_id, None)
