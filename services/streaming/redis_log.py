"""The event log in Redis, so that any worker on any host can serve any stream, with a
number of Redis connections per process that does not grow with the streams.

Each stream is a Redis Stream `sluice:events:<id>` whose entry ids are `0-<seq>`, so
"after N" is an exclusive range; a small hash `sluice:meta:<id>` says whether it has
closed. Both expire `ttl_seconds` after the stream closes (or `open_ttl_seconds` after
it opened, if nobody ever closes it).

This process keeps its own streams in memory as well, and its subscribers read them
from there: no Redis read on the path of a local event. Writes go through one
`RedisWriter`, which sends whatever has queued up in one pipeline (one round trip for
many events when they come fast, at once when they do not). An event reaches the
local copy only once Redis has it, so whatever any client has seen survives a crash
of this process, and the stream that recovery closes goes on from there, gapless. Streams produced
elsewhere are copied into memory by one `RedisTail` per process, a single blocking
`XREAD` over every such stream that someone here is reading. Commands share a small
bounded pool; with the tail and the cancel bus, a process holds a handful of
connections however many streams it serves.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from ..sse import encode_event
from .event_log import (FINAL_EVENT, EventLog, LogSlice, LogUnavailable, MemoryEventLog,
                        StreamEvent, UnknownStream)
from .redis_io import REDIS_ERRORS, RedisTail, RedisWriter, events_key, meta_key, parse_entry

logger = logging.getLogger(__name__)

BATCH = 500  # events per range read
CANCEL_CHANNEL = "sluice:cancel"
# Local copies of streams live in Redis only as long as someone here may resume them
# soon: Redis keeps the durable copy for the full TTL.
LOCAL_TTL_SECONDS = 60.0


class RedisEventLog(EventLog):
    def __init__(self, client: redis.Redis, reader: redis.Redis, ttl_seconds: float,
                 open_ttl_seconds: float = 24 * 3600,
                 local_max_bytes: int = 8 * 1024 * 1024) -> None:
        self.client = client
        self.ttl = max(1, int(ttl_seconds))
        self.open_ttl = max(self.ttl, int(open_ttl_seconds))
        self.local = MemoryEventLog(min(ttl_seconds, LOCAL_TTL_SECONDS), local_max_bytes)
        self._own: dict[str, int] = {}  # streams this process produces -> last seq
        self._lock = threading.Lock()
        # One PING at a time: a burst of requests shares the answer of the one in
        # flight instead of queueing hundreds of PINGs for the shared pool.
        self._ping_lock = threading.Lock()
        self._pinged: tuple[float, bool] = (0.0, False)  # when, and whether Redis answered
        self.writer = RedisWriter(client)
        self.tail = RedisTail(reader, client, self._copy_in, self.local.drop)

    def start(self) -> None:
        self.writer.start()
        self.tail.start()

    def stop(self) -> None:
        self.writer.stop()
        self.tail.stop()

    def available(self) -> bool:
        """Whether Redis answers now; checked before a request stores anything, so that a
        request fails cleanly rather than store a message it cannot stream. A batch Redis
        took a moment ago says so; otherwise one PING does."""
        asked = time.monotonic()
        if self.writer.healthy and asked - self.writer.last_success < 0.5:
            return True
        with self._ping_lock:
            pinged_at, answered = self._pinged
            if pinged_at >= asked:
                return answered  # a PING sent after this request arrived has answered
            try:
                self.client.ping()
                answered = True
            except REDIS_ERRORS:
                answered = False
            self._pinged = (time.monotonic(), answered)
            return answered

    # --- streams this process produces ------------------------------------------------

    def open(self, stream_id: str) -> None:
        self.local.open(stream_id)
        with self._lock:
            self._own[stream_id] = 0
        self.writer.send(lambda pipe: (pipe.hset(meta_key(stream_id), "closed", 0),
                                       pipe.expire(meta_key(stream_id), self.open_ttl)))

    def append(self, stream_id: str, event_type: str, payload: dict[str, Any]) -> StreamEvent:
        final = event_type == FINAL_EVENT
        with self._lock:
            last = self._own.get(stream_id)
            if last is not None:
                if final:
                    del self._own[stream_id]
                else:
                    self._own[stream_id] = last + 1
        if last is None:
            if self.local.has(stream_id) and self.local.closed(stream_id):
                raise ValueError(f"stream {stream_id} is closed")
            return self._append_elsewhere(stream_id, event_type, payload)
        event = StreamEvent(last + 1, event_type, encode_event(last + 1, event_type, payload))
        self.writer.send(lambda pipe: self._write(pipe, stream_id, event, final),
                         then=lambda: self._copy_in(stream_id, [event]))
        return event

    def _write(self, pipe: Any, stream_id: str, event: StreamEvent, final: bool) -> None:
        key = events_key(stream_id)
        # An explicit id that is not above the last one fails: two writers cannot interleave.
        pipe.xadd(key, {"t": event.type, "f": event.frame}, id=f"0-{event.seq}")
        if final:
            pipe.hset(meta_key(stream_id), "closed", 1)
            pipe.expire(meta_key(stream_id), self.ttl)
            pipe.expire(key, self.ttl)
        elif event.seq == 1:
            pipe.expire(key, self.open_ttl)

    def _append_elsewhere(self, stream_id: str, event_type: str,
                          payload: dict[str, Any]) -> StreamEvent:
        """Close a stream whose producer is gone (crash recovery): rare, so direct."""
        try:
            last = self.client.xrevrange(events_key(stream_id), count=1)
            seq = (parse_entry(*last[0]).seq if last else 0) + 1
            event = StreamEvent(seq, event_type, encode_event(seq, event_type, payload))
            pipe = self.client.pipeline()
            self._write(pipe, stream_id, event, event_type == FINAL_EVENT)
            pipe.execute()
        except redis.ResponseError as exc:
            raise ValueError(f"stream {stream_id} moved on meanwhile: {exc}") from exc
        except REDIS_ERRORS as exc:
            raise LogUnavailable(str(exc)) from exc
        return event

    # --- reading any stream -------------------------------------------------------------

    def read(self, stream_id: str, after: int, timeout: float) -> LogSlice:
        self.tail.touch(stream_id)
        try:
            return self.local.read(stream_id, after, timeout)
        except UnknownStream:  # produced elsewhere, and not copied here yet
            self._copy_from_redis(stream_id)
            return self.local.read(stream_id, after, timeout)

    def has(self, stream_id: str) -> bool:
        if self.local.has(stream_id):
            return True
        try:
            return bool(self.client.exists(meta_key(stream_id)))
        except REDIS_ERRORS as exc:
            raise LogUnavailable(str(exc)) from exc

    def closed(self, stream_id: str) -> bool:
        if self.local.has(stream_id):
            return self.local.closed(stream_id)
        try:
            return self.client.hget(meta_key(stream_id), "closed") == b"1"
        except REDIS_ERRORS as exc:
            raise LogUnavailable(str(exc)) from exc

    def _copy_from_redis(self, stream_id: str) -> None:
        """Start a local copy of a stream produced elsewhere: what Redis has now, then
        the tail keeps it up to date while it is open."""
        try:
            events: list[StreamEvent] = []
            while True:
                entries = self.client.xrange(events_key(stream_id),
                                             min=f"(0-{events[-1].seq if events else 0}",
                                             max="+", count=BATCH)
                events += [parse_entry(*entry) for entry in entries]
                if len(entries) < BATCH:
                    break
            closed = self.client.hget(meta_key(stream_id), "closed")
        except REDIS_ERRORS as exc:
            raise LogUnavailable(str(exc)) from exc
        if closed is None and not events:
            raise UnknownStream(stream_id)
        if not self.local.has(stream_id):
            self.local.open(stream_id)
        self.local.insert(stream_id, events)
        if not self.local.closed(stream_id):
            self.tail.follow(stream_id, self.local.last_seq(stream_id))

    def _copy_in(self, stream_id: str, events: list[StreamEvent]) -> bool:
        """From the tail: events of a copied stream; False once nobody needs it."""
        try:
            self.local.insert(stream_id, events)
            return not self.local.closed(stream_id)
        except UnknownStream:
            return False


class RedisCancelBus:
    """Carries "cancel stream X" to whichever process runs X."""

    def __init__(self, client: redis.Redis, listener: redis.Redis,
                 cancel_local: Callable[[str], bool]) -> None:
        self.client = client
        self.listener = listener
        self.cancel_local = cancel_local
        self._stopped = threading.Event()
        self._pubsub: Any = None
        self._ready = threading.Event()

    def publish(self, stream_id: str) -> None:
        try:
            self.client.publish(CANCEL_CHANNEL, stream_id)
        except REDIS_ERRORS as exc:
            raise LogUnavailable(str(exc)) from exc

    def start(self) -> None:
        threading.Thread(target=self._listen, daemon=True, name="sluice-cancel-bus").start()
        self._ready.wait(5)

    def stop(self) -> None:
        self._stopped.set()
        if self._pubsub is not None:
            self._pubsub.close()

    def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                self._pubsub = self.listener.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(CANCEL_CHANNEL)
                self._ready.set()
                for message in self._pubsub.listen():
                    self.cancel_local(message["data"].decode())
            except (redis.RedisError, OSError, AttributeError, ValueError):
                if self._stopped.is_set():
                    return
                logger.warning("cancel bus lost its Redis connection; reconnecting")
                time.sleep(1)
