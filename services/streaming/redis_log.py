"""The event log in Redis, so that any worker on any host can serve any stream.

Each stream is a Redis Stream `sluice:events:<id>` whose entry ids are `0-<seq>`,
so a replay is a range read and "after N" is an exclusive range; live tailing is
a blocking `XREAD` (no polling). A small hash `sluice:meta:<id>` says whether the
stream has closed. Both keys expire `ttl_seconds` after the stream closes, or
`open_ttl_seconds` after it opened if nobody ever closes it.

Cancellation travels the same way: `RedisCancelBus` publishes a stream id on
`sluice:cancel`, and every process cancels the run if it is one of its own.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from ..sse import encode_event
from .event_log import FINAL_EVENT, EventLog, LogSlice, StreamEvent, UnknownStream

logger = logging.getLogger(__name__)

BATCH = 500  # events per read: bounds what one subscriber holds at once
CANCEL_CHANNEL = "sluice:cancel"


def _events_key(stream_id: str) -> str:
    return f"sluice:events:{stream_id}"


def _meta_key(stream_id: str) -> str:
    return f"sluice:meta:{stream_id}"


def _event(entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEvent:
    seq = int(entry_id.split(b"-")[1])
    return StreamEvent(seq, fields[b"t"].decode(), fields[b"f"])


class RedisEventLog(EventLog):
    def __init__(self, client: redis.Redis, ttl_seconds: float,
                 open_ttl_seconds: float = 24 * 3600) -> None:
        self.client = client
        self.ttl = max(1, int(ttl_seconds))
        self.open_ttl = max(self.ttl, int(open_ttl_seconds))
        self._last_seq: dict[str, int] = {}  # streams this process writes
        self._lock = threading.Lock()

    def open(self, stream_id: str) -> None:
        pipe = self.client.pipeline()
        pipe.hset(_meta_key(stream_id), "closed", 0)
        pipe.expire(_meta_key(stream_id), self.open_ttl)
        pipe.execute()
        with self._lock:
            self._last_seq[stream_id] = 0

    def _next_seq(self, stream_id: str) -> int:
        with self._lock:
            known = self._last_seq.get(stream_id)
        if known is None:  # not ours (closing a stream whose producer is gone)
            last = self.client.xrevrange(_events_key(stream_id), count=1)
            known = _event(*last[0]).seq if last else 0
        return known + 1

    def append(self, stream_id: str, event_type: str, payload: dict[str, Any]) -> StreamEvent:
        seq = self._next_seq(stream_id)
        frame = encode_event(seq, event_type, payload)
        pipe = self.client.pipeline()
        # An explicit id that is not above the last one fails: two writers cannot interleave.
        pipe.xadd(_events_key(stream_id), {"t": event_type, "f": frame}, id=f"0-{seq}")
        if event_type == FINAL_EVENT:
            pipe.hset(_meta_key(stream_id), "closed", 1)
            pipe.expire(_meta_key(stream_id), self.ttl)
            pipe.expire(_events_key(stream_id), self.ttl)
        elif seq == 1:
            pipe.expire(_events_key(stream_id), self.open_ttl)
        pipe.execute()
        with self._lock:
            if event_type == FINAL_EVENT:
                self._last_seq.pop(stream_id, None)
            elif stream_id in self._last_seq:
                self._last_seq[stream_id] = seq
        return StreamEvent(seq, event_type, frame)

    def read(self, stream_id: str, after: int, timeout: float) -> LogSlice:
        key = _events_key(stream_id)
        entries = self.client.xrange(key, min=f"(0-{after}", max="+", count=BATCH)
        if not entries:
            closed = self.client.hget(_meta_key(stream_id), "closed")
            if closed is None:
                raise UnknownStream(stream_id)
            if closed == b"1":
                # `closed` is set in the same transaction as the final event, which
                # may have landed just after the range read above: read it again.
                entries = self.client.xrange(key, min=f"(0-{after}", max="+", count=BATCH)
                return LogSlice([_event(*entry) for entry in entries], True)
            found = self.client.xread({key: f"0-{after}"}, count=BATCH,
                                      block=max(1, int(timeout * 1000)))
            entries = found[0][1] if found else []
        events = [_event(entry_id, fields) for entry_id, fields in entries]
        return LogSlice(events, bool(events) and events[-1].type == FINAL_EVENT)

    def has(self, stream_id: str) -> bool:
        return bool(self.client.exists(_meta_key(stream_id)))

    def closed(self, stream_id: str) -> bool:
        return self.client.hget(_meta_key(stream_id), "closed") == b"1"


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
        self.client.publish(CANCEL_CHANNEL, stream_id)

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
