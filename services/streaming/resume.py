"""Streams by id: what a (re)connecting client is sent, and stopping a stream.

A stream belongs to its stored answer (a message, or an operation run): once that is
gone (its thread was deleted) every endpoint answers 404, even while the log still
holds its events.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

from flask import request
from typing import Any

from sqlalchemy.orm import Session

from ..errors import ApiError
from ..sse import PING
from ..storage import Message
from ..storage.models import utcnow
from ..storage.work import OperationRun
from .core import Streaming, streaming
from .event_log import UnknownStream
from .leases import recover_stream
from .records import stored_answer
from .subscribe import follow, replay_stored, stored_event_count


def _stored_answer(session: Session, stream_id: str, user_id: str | None = None,
                   ) -> tuple[Message | OperationRun, dict[str, Any]]:
    """The stream's stored answer and its view; with `user_id`, only if that user owns
    it (another user's stream is not found, exactly like none)."""
    found = stored_answer(session, stream_id, user_id)
    if found is None:
        raise ApiError(404, "stream_not_found", f"There is no stream {stream_id!r}.")
    return found


def to_client(frames: Iterator[bytes]) -> Iterator[bytes]:
    """Frames for the current request's client, which is dropped if it stops reading."""
    core = streaming()
    return core.stalled.guard(frames, request.environ.get("gunicorn.socket"))


def stream_frames(session: Session, user_id: str, stream_id: str,
                  after: int) -> Iterator[bytes] | None:
    """The SSE frames for a (re)connecting client: from the log, or from storage. (An
    HTTP response passes them through `to_client`; a socket paces them itself.)

    None when the stream has ended and the client already has its last event: the
    answer is then `204`, which tells an `EventSource` to stop reconnecting.
    """
    core = streaming()
    stored = _stored_answer(session, stream_id, user_id)[1]
    core.observer.resumed()
    # The response may stream for minutes: give its database connection back now.
    session.close()
    try:
        return log_frames(core, stream_id, after)
    except UnknownStream:
        pass  # not in this log (expired, or another process's): storage has it
    if stored["status"] == "streaming":
        return _await_producer(core, stream_id, after)
    if after == stored_event_count(stored):
        return None
    return replay_stored(stored, after)


def log_frames(core: Streaming, stream_id: str, after: int) -> Iterator[bytes] | None:
    """The stream's frames from the event log: None if it has ended and the client has
    all of it; raises `UnknownStream` if the log does not hold it."""
    if not core.log.has(stream_id):
        raise UnknownStream(stream_id)
    if core.log.closed(stream_id) and not core.log.read(stream_id, after, 0).events:
        return None
    if after > 0 and not core.log.read(stream_id, after - 1, 0).events:
        # An id this running stream has not reached: not its numbering (a replay from
        # storage, another stream). All of it is sent; its `start` says to begin again.
        after = 0
    return follow(core.log, stream_id, after, core.ping_seconds)


def _await_producer(core: Streaming, stream_id: str, after: int) -> Iterator[bytes]:
    """A stream still "streaming" whose events this process cannot see: its producer is
    in a process without a shared log, or gone. Ping until its log appears (follow it),
    it ends, or its lease lapses (then end it as interrupted) and replay what is stored."""
    while True:
        if core.log.has(stream_id):
            yield from follow(core.log, stream_id, after, core.ping_seconds)
            return
        with core.db.transaction() as session:
            row, stored = _stored_answer(session, stream_id)
            lease = row.lease_expires_at
        if stored["status"] != "streaming":
            yield from replay_stored(stored, after)
            return
        if lease is None or lease < utcnow():
            recover_stream(core.db, core.log, stream_id)
            continue
        yield PING
        time.sleep(min(core.ping_seconds, max(0.05, (lease - utcnow()).total_seconds())))


def cancel_stream(session: Session, user_id: str, stream_id: str) -> dict[str, str]:
    """Stop a stream wherever its producer runs. Cancelling one that has already ended
    is accepted and changes nothing; the answer says which happened."""
    core = streaming()
    row = _stored_answer(session, stream_id, user_id)[0]
    return stop_stream(core, stream_id, row.status)


def stop_stream(core: Streaming, stream_id: str, status: str) -> dict[str, str]:
    """Cancel the stream's producer here, or through the bus wherever it runs; `status`
    is its stored answer's, which a stream that has already ended keeps."""
    core.observer.cancel_requested()
    if core.runs.cancel(stream_id):
        return {"stream_id": stream_id, "status": "cancelling"}
    if status == "streaming" and core.bus is not None:
        core.bus.publish(stream_id)
        return {"stream_id": stream_id, "status": "cancelling"}
    return {"stream_id": stream_id, "status": status}
