"""Crash recovery: a streaming message is leased by its producer's process.

The process renews the leases of its runs with each grouped checkpoint
(checkpoints.py). If the process dies, its leases lapse; then any process may end the
message as `interrupted`, keeping the text checkpointed so far, and close the
stream's log with `error` and `done`, so that nothing stays "streaming" forever.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..storage import Database, Message
from ..storage.models import utcnow
from .event_log import EventLog, LogUnavailable, UnknownStream
from .periodic import Periodic
from .subscribe import stored_done

logger = logging.getLogger(__name__)

INTERRUPTED = {"code": "interrupted", "retryable": True,
               "message": "The server producing this answer stopped before it was complete."}


def lease_until(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def close_interrupted_log(log: EventLog, message: Message) -> None:
    """Tell the stream's subscribers it ended: `error`, then `done` with status interrupted."""
    try:
        if not log.has(message.stream_id) or log.closed(message.stream_id):
            return
        log.append(message.stream_id, "error", INTERRUPTED)
        log.append(message.stream_id, "done", stored_done(message.to_dict()))
    except (UnknownStream, ValueError):
        pass  # expired meanwhile, or closed by its producer after all
    except LogUnavailable:
        logger.warning("stream %s ended as interrupted; Redis could not be told",
                       message.stream_id)


def recover_stream(db: Database, log: EventLog, stream_id: str) -> bool:
    """End a stream whose lease has lapsed; True if this call did it (one process wins)."""
    with db.transaction() as session:
        ended = session.execute(
            update(Message)
            .where(Message.stream_id == stream_id, Message.status == "streaming",
                   Message.lease_expires_at < utcnow())
            .values(status="interrupted", finish_reason="error", error=INTERRUPTED,
                    lease_expires_at=None))
        if ended.rowcount != 1:
            return False
        message = session.scalars(select(Message).where(Message.stream_id == stream_id)).one()
    logger.warning("stream %s: its producer is gone; ended as interrupted", stream_id)
    close_interrupted_log(log, message)
    return True


def lapsed_streams(db: Database, limit: int = 100) -> list[str]:
    with db.transaction() as session:
        return list(session.scalars(
            select(Message.stream_id)
            .where(Message.status == "streaming", Message.lease_expires_at < utcnow())
            .limit(limit)))


class LeaseKeeper(Periodic):
    """One per process: recovers the streams whose producers are gone. (The leases of
    this process's own runs are renewed with its grouped checkpoints.)"""

    name = "sluice-leases"
    failure = "lease upkeep failed; will try again"

    def __init__(self, db: Database, log: EventLog, local_streams: Callable[[], list[str]],
                 lease_seconds: float) -> None:
        super().__init__(lease_seconds / 3)
        self.db = db
        self.log = log
        self.local_streams = local_streams

    def tick(self) -> None:
        """End the streams whose producers are gone. A stream of this process is never
        one of them, even if a stalled loop let its lease lapse."""
        ours = set(self.local_streams())
        for stream_id in set(lapsed_streams(self.db)) - ours:
            recover_stream(self.db, self.log, stream_id)
