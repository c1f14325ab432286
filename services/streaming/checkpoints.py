"""Grouped checkpoints: every interval, the text of every answer this process is
producing goes to the database in one transaction (one statement, many rows), and
their leases are renewed with it. One write per interval for the whole process, not
one per stream, keeps storage off the path of every token."""
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
_CHECKPOINT = (update(Message.__table__)
               .where(Message.__table__.c.id == bindparam("message_id"),
                      Message.__table__.c.status == "streaming")
               .values(content=bindparam("content"), reasoning=bindparam("reasoning"),
                       model=bindparam("model"), lease_expires_at=bindparam("lease"),
                       updated_at=bindparam("now")))


class Checkpointer:
    """One per process; `collect()` gives the changed runs' values (see
    `StreamRun.checkpoint`)."""

    def __init__(self, db: Database, collect: Callable[[], list[dict[str, Any]]],
                 interval: float, lease_seconds: float) -> None:
        self.db = db
        self.collect = collect
        self.interval = interval
        self.lease_seconds = lease_seconds
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="sluice-checkpoints").start()

    def stop(self) -> None:
        self._stopped.set()

    def tick(self) -> int:
        """Store what changed; returns how many answers were written."""
        rows = self.collect()
        if not rows:
            return 0
        lease, now = lease_until(self.lease_seconds), utcnow()
        for row in rows:
            row["lease"] = lease
            row["now"] = now
        with self.db.transaction() as session:
            session.connection().execute(_CHECKPOINT, rows)
        return len(rows)

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.tick()
            except SQLAlchemyError:
                logger.exception("checkpoint failed; the next one will carry the text")
