"""Grouped checkpoints: every interval, the text of every answer this process is
producing goes to the database in one transaction (one statement, many rows), and
the leases of all of them are renewed in it. One write per interval for the whole
process, not one per stream, keeps storage off the path of every token.

It is also the only transaction of a process that updates many messages at once:
two such transactions (a lease renewal beside a checkpoint) took the same rows'
locks in different orders, and PostgreSQL found deadlocks."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table

from ..storage import Database
from .periodic import Periodic
from .records import renew_leases, write_checkpoints


class Checkpointer(Periodic):
    """One per process; `collect()` gives the changed runs' values (see
    `StreamRun.checkpoint`), `local_streams()` the streams whose leases to renew."""

    name = "sluice-checkpoints"
    failure = "checkpoint failed; the next one will carry the text"

    def __init__(self, db: Database, collect: Callable[[], list[dict[str, Any]]],
                 local_streams: Callable[[], list[tuple[Table, str]]],
                 checkpoint_seconds: float,
                 lease_seconds: float) -> None:
        # Often enough for both: a lease is renewed three times before it lapses.
        super().__init__(min(checkpoint_seconds, lease_seconds / 3))
        self.db = db
        self.collect = collect
        self.local_streams = local_streams
        self.lease_seconds = lease_seconds

    def tick(self) -> int:
        """Store what changed and renew every lease; returns how many texts were written."""
        streams = self.local_streams()
        rows = sorted(self.collect(), key=lambda row: row["row_id"])
        if not streams and not rows:
            return 0
        with self.db.transaction() as session:
            connection = session.connection()
            write_checkpoints(connection, rows)
            if streams:
                renew_leases(connection, streams, self.lease_seconds)
        return len(rows)
