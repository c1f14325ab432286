"""Crash recovery: a streaming message is leased by its producer's process.

The process renews the leases of its runs with each grouped checkpoint
(checkpoints.py). If the process dies, its leases lapse; then any process may end the
message as `interrupted`, keeping the text checkpointed so far, and close the
stream's log with `error` and `done`, so that nothing stays "streaming" forever.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..storage import Database
from .event_log import EventLog, LogUnavailable, UnknownStream
from .periodic import Periodic
from .records import end_lapsed, lapsed_streams, lease_until, stored_answer
from .subscribe import stored_done

__all__ = ["INTERRUPTED", "LeaseKeeper", "close_interrupted_log", "lease_until", "recover_stream"]

logger = logging.getLogger(__name__)

INTERRUPTED = {"code": "interrupted", "retryable": True,
               "message": "The server producing this answer stopped before it was complete."}


def close_interrupted_log(log: EventLog, answer: dict[str, Any]) -> None:
    """Tell the stream's subscribers it ended: `error`, then `done` with status interrupted.
    `answer` is the stored answer's view (records.answer_view)."""
    stream_id = answer["stream_id"]
    try:
        if not log.has(stream_id) or log.closed(stream_id):
            return
        log.append(stream_id, "error", INTERRUPTED)
        log.append(stream_id, "done", stored_done(answer))
    except (UnknownStream, ValueError):
        pass  # expired meanwhile, or closed by its producer after all
    except LogUnavailable:
        logger.warning("stream %s ended as interrupted; Redis could not be told", stream_id)


def recover_stream(db: Database, log: EventLog, stream_id: str) -> bool:
    """End a stream whose lease has lapsed; True if this call did it (one process wins)."""
    with db.transaction() as session:
        if not end_lapsed(session, stream_id, {"status": "interrupted", "finish_reason": "error",
                                               "error": INTERRUPTED, "lease_expires_at": None}):
            return False
        found = stored_answer(session, stream_id)
    logger.warning("stream %s: its producer is gone; ended as interrupted", stream_id)
    if found is not None:
        close_interrupted_log(log, found[1])
    return True


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
