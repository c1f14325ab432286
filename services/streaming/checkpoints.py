"""Grouped checkpoints: every interval, the text of every answer this process is
producing goes to the database in one transaction (one statement, many rows), and
the leases of all of them are renewed in it. One write per interval for the whole
process, not one per stream, keeps storage off the path of every token.

It is also the only transaction of a process that updates many messages at once:
two such transactions (a lease renewal beside a checkpoint) took the same rows'
locks in different orders, and PostgreSQL found deadlocks."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.exc import SQLAlchemyError

from ..storage import Database, Message
from ..storage.models import utcnow
from .leases import lease_until

logger = logging.getLogger(__name__)

# Only rows still streaming: a run that has just stored its end must not be
# overwritten by the text this checkpoint collected a moment before.
_MESSAGES = Message.__table__
_CHECKPOINT = (update(_MESSAGES)
               .where(_MESSAGES.c.id == bindparam("message_id"),
                      _MESSAGES.c.status == "streaming")
               .values(content=bindparam("content"), reasoning=bindparam("reasoning"),
                       model=bindparam("model"), lease_expires_at=bindparam("lease"),
                       updated_at=bindparam("now")))


class Checkpointer:
    """One per process; `collect()` gives the changed runs' values (see
    `StreamRun.checkpoint`), `local_streams()` the streams whose leases to renew."""

    def __init__(self, db: Database, collect: Callable[[], list[dict[str, Any]]],
                 local_streams: Callable[[], list[str]], checkpoint_seconds: float,
                 lease_seconds: float) -> None:
        self.db = db
        self.collect = collect
        self.local_streams = local_streams
        # Often enough for both: a lease is renewed three times before it lapses.
        self.interval = min(checkpoint_seconds, lease_seconds / 3)
        self.lease_seconds = lease_seconds
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="sluice-checkpoints").start()

    def stop(self) -> None:
        self._stopped.set()

    def tick(self) -> int:
        """Store what changed and renew every lease; returns how many texts were written."""
        streams = sorted(self.local_streams())
        rows = sorted(self.collect(), key=lambda row: row["message_id"])
        if not streams and not rows:
            return 0
        lease, now = lease_until(self.lease_seconds), utcnow()
        for row in rows:
            row["lease"], row["now"] = lease, now
        with self.db.transaction() as session:
            connection = session.connection()
            if rows:
                connection.execute(_CHECKPOINT, rows)
            if streams:
                connection.execute(update(_MESSAGES)
                                   .where(_MESSAGES.c.stream_id.in_(streams),
                                          _MESSAGES.c.status == "streaming")
                                   .values(lease_expires_at=lease))
        return len(rows)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.tick()
            except SQLAlchemyError:
                logger.exception("checkpoint failed; the next one will carry the text")
