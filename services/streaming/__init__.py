"""The streaming core: runs produce into an event log that responses subscribe to."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..storage import Message, database
from .event_log import EventLog, MemoryEventLog
from .manager import RunManager
from .runs import RunSpec, StreamRun
from .subscribe import follow, replay_stored

__all__ = ["RunSpec", "StreamRun", "Streaming", "cancel_stream", "init_app", "stream_frames",
           "streaming"]

EXTENSION = "sluice.streaming"


@dataclass(frozen=True)
class Streaming:
    log: EventLog
    runs: RunManager
    ping_seconds: float


def init_app(app: Flask) -> None:
    """Attach the event log and run manager to `app`."""
    log = MemoryEventLog(ttl_seconds=app.config["SLUICE_EVENT_TTL_SECONDS"])
    runs = RunManager(log, database(app), app.config["SLUICE_CHECKPOINT_SECONDS"])
    app.extensions[EXTENSION] = Streaming(log, runs, app.config["SLUICE_PING_SECONDS"])


def streaming(app: Flask | None = None) -> Streaming:
    return (app or current_app).extensions[EXTENSION]


def _stored_message(session: Session, stream_id: str) -> Message:
    message = session.scalars(select(Message).where(Message.stream_id == stream_id)).first()
    if message is None:
        raise ApiError(404, "stream_not_found", f"There is no stream {stream_id!r}.")
    return message


def stream_frames(session: Session, stream_id: str, after: int) -> Iterator[bytes]:
    """The SSE frames for a (re)connecting client: from the log, or from storage."""
    core = streaming()
    if core.log.has(stream_id):
        return follow(core.log, stream_id, after, core.ping_seconds)
    message = _stored_message(session, stream_id).to_dict()
    return replay_stored(message, after)


def cancel_stream(session: Session, stream_id: str) -> dict[str, str]:
    """Stop a stream. Cancelling one that has already ended is accepted and changes nothing;
    the answer says which happened (`cancelling`, or the stored message's status)."""
    if streaming().runs.cancel(stream_id):
        return {"stream_id": stream_id, "status": "cancelling"}
    return {"stream_id": stream_id, "status": _stored_message(session, stream_id).status}
