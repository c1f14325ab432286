"""Where runs store their answers: a message of a thread, or an operation run.

Both tables have the same answer columns (text, status, usage, metrics, stream id,
lease), so checkpoints, leases and crash recovery treat them alike; this module is
the one place that knows there are two.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..storage import Database, Message, Thread
from ..storage.models import utcnow
from ..storage.work import OperationRun

MESSAGES: Table = Message.__table__
OPERATION_RUNS: Table = OperationRun.__table__
ANSWER_TABLES = (MESSAGES, OPERATION_RUNS)


def lease_until(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


@dataclass(frozen=True)
class AnswerRow:
    """The row a run fills: its table and id."""

    table: Table
    id: str

    @classmethod
    def message(cls, message_id: str) -> AnswerRow:
        return cls(MESSAGES, message_id)

    @classmethod
    def operation_run(cls, run_id: str) -> AnswerRow:
        return cls(OPERATION_RUNS, run_id)

    def store(self, db: Database, values: dict[str, Any]) -> None:
        """Write the answer's values. A Core statement on one connection: no ORM session
        on the path of every end."""
        with db.engine.begin() as connection:
            connection.execute(update(self.table).where(self.table.c.id == self.id)
                               .values(**values))


def _checkpoint(table: Table) -> Any:
    # Only rows still streaming: a run that has just stored its end must not be
    # overwritten by the text a checkpoint collected a moment before.
    return (update(table).where(table.c.id == bindparam("row_id"),
                                table.c.status == "streaming")
            .values(content=bindparam("content"), reasoning=bindparam("reasoning"),
                    model=bindparam("model"), updated_at=bindparam("now")))


def write_checkpoints(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Store the collected texts, one executemany statement per table."""
    now = utcnow()
    for table in ANSWER_TABLES:
        mine = [{**row, "now": now} for row in rows if row["table"] is table]
        if mine:
            connection.execute(_checkpoint(table), mine)


def renew_leases(connection: Connection, streams: list[tuple[Table, str]],
                 lease_seconds: float) -> None:
    """Renew the leases of these (table, stream id) pairs: one UPDATE per table in use."""
    for table in ANSWER_TABLES:
        stream_ids = sorted(stream_id for owner, stream_id in streams if owner is table)
        if stream_ids:
            connection.execute(update(table).where(table.c.stream_id.in_(stream_ids),
                                                   table.c.status == "streaming")
                               .values(lease_expires_at=lease_until(lease_seconds)))


def lapsed_streams(db: Database, limit: int = 100) -> list[str]:
    """Streams still "streaming" whose producers stopped renewing their leases."""
    with db.transaction() as session:
        return [stream_id for table in ANSWER_TABLES for stream_id in session.scalars(
            select(table.c.stream_id)
            .where(table.c.status == "streaming", table.c.lease_expires_at < utcnow())
            .limit(limit))]


def end_lapsed(session: Session, stream_id: str, values: dict[str, Any]) -> bool:
    """Give a lapsed stream's row its end; True if this call did it (one process wins)."""
    for table in ANSWER_TABLES:
        ended = session.execute(
            update(table)
            .where(table.c.stream_id == stream_id, table.c.status == "streaming",
                   table.c.lease_expires_at < utcnow())
            .values(**values))
        if ended.rowcount == 1:
            return True
    return False


def answer_view(row: Message | OperationRun) -> dict[str, Any]:
    """A stored answer as the stream replay needs it, whichever table it is in."""
    if isinstance(row, Message):
        return {**row.to_dict(), "message_id": row.id, "run_id": None}
    # The streamed text, as a message's `content` is (`raw` may be a repair's, not sent).
    return {**row.to_dict(), "content": row.content, "reasoning": row.reasoning,
            "thread_id": None, "message_id": None, "run_id": row.id}


def stored_answer(session: Session, stream_id: str, user_id: str | None = None,
                  ) -> tuple[Message | OperationRun, dict[str, Any]] | None:
    """The row of the stream and its view; with `user_id`, only if that user owns it."""
    query = select(Message).where(Message.stream_id == stream_id)
    if user_id is not None:
        query = query.join(Thread).where(Thread.user_id == user_id)
    message = session.scalars(query).first()
    if message is not None:
        view = answer_view(message)
        return message, {**view, "tool_results": _server_results(session, message)}
    run_query = select(OperationRun).where(OperationRun.stream_id == stream_id)
    if user_id is not None:
        run_query = run_query.where(OperationRun.user_id == user_id)
    run = session.scalars(run_query).first()
    return None if run is None else (run, answer_view(run))


def _server_results(session: Session, message: Message) -> dict[str, dict[str, Any]]:
    """The stored results of the server tools an answer called, by call id, each as its
    `tool_result` event carried it (a caller's results belong to a later request)."""
    names = {call["id"]: call["name"] for call in message.tool_calls or () if call.get("server")}
    if not names:
        return {}
    rows = session.execute(select(MESSAGES.c.tool_call_id, MESSAGES.c.content, MESSAGES.c.error,
                                  MESSAGES.c.duration_ms)
                           .where(MESSAGES.c.thread_id == message.thread_id,
                                  MESSAGES.c.role == "tool",
                                  MESSAGES.c.position > message.position,
                                  MESSAGES.c.tool_call_id.in_(names)))
    results: dict[str, dict[str, Any]] = {}
    for call_id, content, error, duration_ms in rows:
        outcome = {"error": error["message"]} if error else {"result": content}
        results.setdefault(call_id, {"id": call_id, "name": names[call_id], **outcome,
                                     "duration_ms": duration_ms})
    return results
