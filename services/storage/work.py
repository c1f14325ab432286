"""Stored work besides chat: operation runs, background jobs, and webhook deliveries.

An operation run has the same answer columns as a message (text, status, usage,
metrics, stream and lease), so the streaming core stores and recovers both alike.
A job is the state of record of background work: the queue engine only carries
its id, and what it has to do and how far it got live here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import AnswerColumns, Base, isoformat, new_id, utcnow


class OperationRun(AnswerColumns, Base):
    """One call of an AI operation (`refine`, `extract`, …): its input, answer and result."""

    __tablename__ = "operation_runs"
    __table_args__ = (Index("ix_operation_runs_status_lease", "status", "lease_expires_at"),
                      Index("ix_operation_runs_user_created", "user_id", "created_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("opr"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    operation: Mapped[str] = mapped_column(String(64))
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The answer's columns are a message's (AnswerColumns): `content` is the text as it
    # streamed. `queued` until a job's worker starts it.
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # The parsed result, and the repaired text it came from when the first was invalid.
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    repaired: Mapped[str | None] = mapped_column(Text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "input": self.input,
            "status": self.status,
            "model": self.model,
            "result": self.result,
            "raw": self.raw,
            "finish_reason": self.finish_reason,
            "error": self.error,
            "usage": self.usage(),
            "metrics": self.metrics(),
            "stream_id": self.stream_id,
            "created_at": isoformat(self.created_at),
        }

    def answer(self) -> dict[str, Any]:
        """What `POST /api/v1/operations/<name>` answers with: the result first."""
        return {"result": self.result, "raw": self.raw, "usage": self.usage(),
                "metrics": self.metrics(), "run_id": self.id, "status": self.status,
                "model": self.model}

    @property
    def raw(self) -> str:
        """The model's text the result came from: the repaired one, if it was repaired."""
        return self.repaired if self.repaired is not None else self.content


class Job(Base):
    """Background work with a webhook: a chat answer or an operation run, then delivery."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),
                      Index("ix_jobs_status_due", "status", "next_attempt_at"),
                      Index("ix_jobs_delivery_due", "webhook_status", "next_delivery_at"),
                      Index("ix_jobs_user_created", "user_id", "created_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # message | operation
    # queued | running | complete | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # What to run: a chat job answers the stored request message of its thread.
    thread_id: Mapped[str | None] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    request_message_id: Mapped[str | None] = mapped_column(String(40))
    message_id: Mapped[str | None] = mapped_column(String(40))  # the answer of the last run
    operation_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("operation_runs.id", ondelete="CASCADE"))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)  # model, tools: as the POST said
    stream_id: Mapped[str] = mapped_column(String(40), unique=True)  # of the current run
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # runs started
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The webhook: none | pending | delivered | failed.
    callback_url: Mapped[str] = mapped_column(Text)
    webhook_id: Mapped[str] = mapped_column(String(40))  # the same on every attempt
    webhook_status: Mapped[str] = mapped_column(String(16), default="none")
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_delivery_at: Mapped[datetime | None] = mapped_column(DateTime)
    delivery_lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    @classmethod
    def queued(cls, user_id: str, kind: str, stream_id: str, options: dict[str, Any],
               webhook_id: str, callback_url: str = "", **links: Any) -> Job:
        """A new job, queued now; without `callback_url` it has no webhook (its stream
        is its progress)."""
        now = utcnow()
        return cls(id=new_id("job"), user_id=user_id, kind=kind, status="queued",
                   options=options, stream_id=stream_id, callback_url=callback_url,
                   webhook_id=webhook_id, webhook_status="none", webhook_attempts=0,
                   attempts=0, next_attempt_at=now, created_at=now, updated_at=now, **links)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "stream_id": self.stream_id,
            "thread_id": self.thread_id,
            "message_id": self.message_id,
            "operation_run_id": self.operation_run_id,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "webhook": {
                "url": self.callback_url,
                "status": self.webhook_status,
                "id": self.webhook_id,
                "attempts": self.webhook_attempts,
                "next_attempt_at": isoformat(self.next_delivery_at),
                "delivered_at": isoformat(self.delivered_at),
            },
            "created_at": isoformat(self.created_at),
            "finished_at": isoformat(self.finished_at),
        }


class WebhookAttempt(Base):
    """One POST of a job's webhook: when, what came back, and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "attempted_at": isoformat(self.attempted_at),
                "status_code": self.status_code, "duration_ms": self.duration_ms,
                "error": self.error, "response_excerpt": self.response_excerpt}


class WebhookSecret(Base):
    """A user's signing secret. The previous one still signs for a day after a rotation,
    so receivers can switch without dropping deliveries."""

    __tablename__ = "webhook_secrets"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    # Kept as is: signing needs the secret itself, as every Standard Webhooks sender does.
    secret: Mapped[str] = mapped_column(String(80))
    previous_secret: Mapped[str | None] = mapped_column(String(80))
    rotated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
