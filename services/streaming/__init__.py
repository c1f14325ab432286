"""The streaming core: runs produce into an event log that responses subscribe to.

Without `REDIS_URL` the log lives in this process (run one worker); with it, in
Redis, and any worker on any host can serve or cancel any stream.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..sse import PING
from ..storage import Database, Message, database
from ..storage.models import utcnow
from .event_log import EventLog, MemoryEventLog
from .leases import LeaseKeeper, recover_stream
from .manager import RunManager
from .redis_log import RedisCancelBus, RedisEventLog
from .runs import RunSpec, StreamRun
from .subscribe import StalledClients, follow, replay_stored

__all__ = ["RunSpec", "StreamRun", "Streaming", "cancel_stream", "init_app",
           "install_graceful_shutdown", "stream_frames", "streaming", "to_client"]

EXTENSION = "sluice.streaming"
logger = logging.getLogger(__name__)


@dataclass
class Streaming:
    log: EventLog
    runs: RunManager
    db: Database
    ping_seconds: float
    lease_seconds: float
    redis: redis.Redis | None = None
    bus: RedisCancelBus | None = None
    keeper: LeaseKeeper | None = None
    stalled: StalledClients | None = None
    draining: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Stop this process's background work (tests; the process is going away)."""
        for part in (self.keeper, self.bus, self.stalled):
            if part is not None:
                part.stop()


def init_app(app: Flask) -> None:
    """Attach the event log, run manager, lease keeper and (with Redis) the cancel bus."""
    config = app.config
    client = None
    if config["REDIS_URL"]:
        # Subscribers block in XREAD for up to a ping interval: reads may take that long.
        client = redis.Redis.from_url(config["REDIS_URL"],
                                      socket_timeout=config["SLUICE_PING_SECONDS"] + 10)
    log: EventLog = (RedisEventLog(client, config["SLUICE_EVENT_TTL_SECONDS"]) if client
                     else MemoryEventLog(ttl_seconds=config["SLUICE_EVENT_TTL_SECONDS"]))
    db = database(app)
    lease = config["SLUICE_LEASE_SECONDS"]
    runs = RunManager(log, db, config["SLUICE_CHECKPOINT_SECONDS"], lease)
    core = Streaming(log, runs, db, config["SLUICE_PING_SECONDS"], lease, redis=client)
    core.keeper = LeaseKeeper(db, log, runs.stream_ids, lease)
    core.keeper.start()
    core.stalled = StalledClients(config["SLUICE_SEND_TIMEOUT"])
    core.stalled.start()
    if client is not None:
        # The subscription idles for as long as nobody cancels: no read timeout, but
        # a health check so that a dead connection is noticed and replaced.
        listener = redis.Redis.from_url(config["REDIS_URL"], socket_timeout=None,
                                        health_check_interval=30)
        core.bus = RedisCancelBus(client, listener, runs.cancel)
        core.bus.start()
    app.extensions[EXTENSION] = core


def streaming(app: Flask | None = None) -> Streaming:
    return (app or current_app).extensions[EXTENSION]


def _stored_message(session: Session, stream_id: str) -> Message:
    message = session.scalars(select(Message).where(Message.stream_id == stream_id)).first()
    if message is None:
        raise ApiError(404, "stream_not_found", f"There is no stream {stream_id!r}.")
    return message


def to_client(frames: Iterator[bytes]) -> Iterator[bytes]:
    """Frames for the current request's client, which is dropped if it stops reading."""
    core = streaming()
    return core.stalled.guard(frames, request.environ.get("gunicorn.socket"))


def stream_frames(session: Session, stream_id: str, after: int) -> Iterator[bytes]:
    """The SSE frames for a (re)connecting client: from the log, or from storage."""
    core = streaming()
    if core.log.has(stream_id):
        return to_client(follow(core.log, stream_id, after, core.ping_seconds))
    message = _stored_message(session, stream_id)
    if message.status == "streaming":
        return to_client(_await_producer(core, stream_id, after))
    return replay_stored(message.to_dict(), after)


def _await_producer(core: Streaming, stream_id: str, after: int) -> Iterator[bytes]:
    """A stream still "streaming" whose events this process cannot see: its producer is
    in a process without a shared log, or gone. Ping until its log appears (follow it),
    it ends, or its lease lapses (then end it as interrupted) and replay what is stored."""
    while True:
        if core.log.has(stream_id):
            yield from follow(core.log, stream_id, after, core.ping_seconds)
            return
        with core.db.transaction() as session:
            message = _stored_message(session, stream_id)
            stored, lease = message.to_dict(), message.lease_expires_at
        if stored["status"] != "streaming":
            yield from replay_stored(stored, after)
            return
        if lease is None or lease < utcnow():
            recover_stream(core.db, core.log, stream_id)
            continue
        yield PING
        time.sleep(min(core.ping_seconds, max(0.05, (lease - utcnow()).total_seconds())))


def cancel_stream(session: Session, stream_id: str) -> dict[str, str]:
    """Stop a stream wherever its producer runs. Cancelling one that has already ended
    is accepted and changes nothing; the answer says which happened."""
    core = streaming()
    if core.runs.cancel(stream_id):
        return {"stream_id": stream_id, "status": "cancelling"}
    message = _stored_message(session, stream_id)
    if message.status == "streaming" and core.bus is not None:
        core.bus.publish(stream_id)
        return {"stream_id": stream_id, "status": "cancelling"}
    return {"stream_id": stream_id, "status": message.status}


def install_graceful_shutdown(app: Flask, graceful_seconds: float,
                              spawn: Callable[..., object]) -> None:
    """On SIGTERM: take no new answers, let running ones finish within the graceful
    time, then store the rest as interrupted — before gunicorn's own deadline.

    `spawn` starts the drain without blocking (a signal handler must not block):
    `gevent.spawn` under gunicorn's gevent worker."""
    core = streaming(app)
    previous: Any = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        if not core.draining.is_set():
            core.draining.set()
            window = max(0.0, graceful_seconds - 3)  # leave time to store and say done
            spawn(core.runs.drain, window)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
