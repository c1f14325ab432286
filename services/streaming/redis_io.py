"""The two background workers behind the Redis event log, one of each per process:
`RedisWriter` sends queued writes in pipelines, `RedisTail` follows streams produced
elsewhere with one blocking `XREAD`. Both survive Redis going away: they retry with
backoff and say whether they are `healthy`."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import redis

from .event_log import StreamEvent

logger = logging.getLogger(__name__)

REDIS_ERRORS = (redis.RedisError, OSError)
EVENTS_PREFIX = "sluice:events:"


def events_key(stream_id: str) -> str:
    return EVENTS_PREFIX + stream_id


def meta_key(stream_id: str) -> str:
    return f"sluice:meta:{stream_id}"


def parse_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEvent:
    seq = int(entry_id.split(b"-")[1])
    return StreamEvent(seq, fields[b"t"].decode(), fields[b"f"])


class Backoff:
    """Waits that double from `first` to `cap`, reset by a success."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first, self.cap, self.next = first, cap, first

    def wait(self, stopped: threading.Event) -> None:
        stopped.wait(self.next)
        self.next = min(self.cap, self.next * 2)

    def reset(self) -> None:
        self.next = self.first


Write = Callable[[Any], Any]
Then = Callable[[], None] | None


class RedisWriter:
    """Sends writes in order, as many as have queued up in one pipeline: at once when
    it is idle, so one event costs one round trip, and in batches when events come
    faster than Redis answers. While Redis is away, writes wait in the queue. Each
    write's `then` runs once Redis has it, in order."""

    MAX_BATCH = 2_000
    MAX_QUEUE = 500_000  # past this, the oldest writes are dropped (with a warning)

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.healthy = True
        self.last_success = 0.0  # monotonic time of the last batch Redis took
        self._queue: deque[tuple[Write, Then]] = deque()
        self._ready = threading.Condition()
        self._stopped = threading.Event()

    def send(self, write: Write, then: Then = None) -> None:
        """Queue `write(pipeline)` for the next batch; `then()` once it is in Redis."""
        with self._ready:
            if len(self._queue) >= self.MAX_QUEUE:
                self._queue.popleft()
                logger.warning("Redis writes are backing up; dropping the oldest")
            self._queue.append((write, then))
            self._ready.notify()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="sluice-redis-writer").start()

    def stop(self) -> None:
        self._stopped.set()
        with self._ready:
            self._ready.notify()

    def pending(self) -> int:
        with self._ready:
            return len(self._queue)

    def _next_batch(self) -> list[tuple[Write, Then]]:
        with self._ready:
            while not self._queue and not self._stopped.is_set():
                self._ready.wait(1.0)
            count = min(len(self._queue), self.MAX_BATCH)
            return [self._queue.popleft() for _ in range(count)]

    def _loop(self) -> None:
        backoff = Backoff()
        while not self._stopped.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                pipe = self.client.pipeline(transaction=False)
                for write, _ in batch:
                    write(pipe)
                for result in pipe.execute(raise_on_error=False):
                    if isinstance(result, Exception):
                        logger.warning("a Redis write was refused: %s", result)
            except REDIS_ERRORS as exc:
                if self.healthy:
                    logger.warning("Redis writes failed (%s); retrying", exc)
                self.healthy = False
                with self._ready:
                    self._queue.extendleft(reversed(batch))
                backoff.wait(self._stopped)
                continue
            if not self.healthy:
                logger.info("Redis writes are going through again")
            self.healthy = True
            self.last_success = time.monotonic()
            backoff.reset()
            for _, then in batch:
                if then is not None:
                    then()


class RedisTail:
    """Follows streams produced elsewhere: one blocking `XREAD` over all of them, whose
    new entries go to `deliver(stream_id, events)` (False: stop following it). A stream
    that joins wakes the `XREAD` through a stream key of this process's own, so it is
    followed at once; one nobody touched for `idle_seconds` is handed to `forget`."""

    BLOCK_MS = 10_000
    BATCH = 500

    def __init__(self, reader: redis.Redis, client: redis.Redis,
                 deliver: Callable[[str, list[StreamEvent]], bool],
                 forget: Callable[[str], None], idle_seconds: float = 60.0) -> None:
        self.reader = reader  # its own connection: it blocks
        self.client = client
        self.deliver = deliver
        self.forget = forget
        self.idle_seconds = idle_seconds
        self.healthy = True
        self.wake_key = f"sluice:wake:{uuid.uuid4().hex}"
        self._cursors: dict[str, int] = {}  # stream -> last seq copied
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()
        self._joined = threading.Event()
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="sluice-redis-tail").start()

    def stop(self) -> None:
        self._stopped.set()
        self._joined.set()

    def follow(self, stream_id: str, after: int) -> None:
        with self._lock:
            joined = stream_id not in self._cursors
            if joined:
                self._cursors[stream_id] = after
            self._touched[stream_id] = time.monotonic()
        if joined:
            self._joined.set()
            self._wake()

    def touch(self, stream_id: str) -> None:
        with self._lock:
            if stream_id in self._cursors:
                self._touched[stream_id] = time.monotonic()

    def _wake(self) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(self.wake_key, {"w": 1}, maxlen=1, approximate=False)
            pipe.expire(self.wake_key, 3600)
            pipe.execute()
        except REDIS_ERRORS:
            pass  # the XREAD's own timeout picks the stream up

    def _following(self) -> dict[str, int]:
        now = time.monotonic()
        with self._lock:
            idle = [s for s, at in self._touched.items() if now - at > self.idle_seconds]
            for stream_id in idle:
                self._cursors.pop(stream_id, None)
                self._touched.pop(stream_id, None)
            following = dict(self._cursors)
        for stream_id in idle:
            self.forget(stream_id)
        return following

    def _loop(self) -> None:
        backoff = Backoff()
        while not self._stopped.is_set():
            following = self._following()
            if not following:
                self._joined.wait(1.0)
                self._joined.clear()
                continue
            keys: dict[Any, Any] = {events_key(s): f"0-{seq}" for s, seq in following.items()}
            keys[self.wake_key] = "$"
            try:
                found = self.reader.xread(keys, count=self.BATCH, block=self.BLOCK_MS)
            except REDIS_ERRORS as exc:
                if self.healthy:
                    logger.warning("Redis reads failed (%s); retrying", exc)
                self.healthy = False
                backoff.wait(self._stopped)
                continue
            self.healthy = True
            backoff.reset()
            for key, entries in found or []:
                name = key.decode()
                if name.startswith(EVENTS_PREFIX) and entries:
                    self._hand_over(name[len(EVENTS_PREFIX):],
                                    [parse_entry(*entry) for entry in entries])

    def _hand_over(self, stream_id: str, events: list[StreamEvent]) -> None:
        keep = self.deliver(stream_id, events)
        with self._lock:
            if stream_id not in self._cursors:
                return
            if keep:
                self._cursors[stream_id] = events[-1].seq
            else:
                self._cursors.pop(stream_id, None)
                self._touched.pop(stream_id, None)
