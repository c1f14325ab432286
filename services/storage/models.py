"""The stored conversation: threads and their messages."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

if TYPE_CHECKING:
    from .summaries import ThreadSummary
    from .documents import ThreadDocument


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as `msg_3f9a…`; the prefix tells its kind."""
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo: every timestamp is stored as naive UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def isoformat(moment: datetime | None) -> str | None:
    """A stored naive-UTC timestamp as ISO 8601 with a `Z`."""
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


class Base(DeclarativeBase):
    pass


# With SLUICE_AUTH=off every object belongs to this user (created by migration 0004).
LOCAL_USER_ID = "usr_local"


class User(Base):
    """Someone who signs in on the page, or owns the keys a program uses."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usr"))
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # argon2id; None for the local user, who never signs in.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": isoformat(self.created_at)}


class ApiKey(Base):
    """A program's credential. Only a hash of the secret is stored, and a prefix to show."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(24))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256, hex
    models: Mapped[list[str] | None] = mapped_column(JSON)  # None: every model
    # This key's own limits; None: the server's (SLUICE_KEY_RPM, SLUICE_KEY_MAX_STREAMS).
    rpm: Mapped[int | None] = mapped_column(Integer)
    max_streams: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "models": self.models,
            "rpm": self.rpm,
            "max_streams": self.max_streams,
            "expires_at": isoformat(self.expires_at),
            "revoked_at": isoformat(self.revoked_at),
            "created_at": isoformat(self.created_at),
        }


class Thread(Base):
    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("thr"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True,
                                         default=LOCAL_USER_ID)
    title: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    system: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    messages: Mapped[list[Message]] = relationship(
        back_populates="thread", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Message.position")
    # The latest summary of its earlier messages (storing one replaces the one before,
    # which it covers). Loaded when a view shows it, not with every lookup of a thread
    # (a list loads them for all its threads at once).
    summary: Mapped[ThreadSummary | None] = relationship(viewonly=True)
    # The documents its answers search (storage/documents.py); none: all the user's.
    attachments: Mapped[list[ThreadDocument]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True,
        order_by="ThreadDocument.document_id")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "model": self.model,
            "system": self.system,
            "summary": self.summary.to_dict() if self.summary else None,
            "documents": [attachment.document_id for attachment in self.attachments],
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


class AnswerColumns:
    """A model's answer as a row stores it, whether a message's or an operation run's:
    the streaming core writes, checkpoints and recovers both alike (streaming/records.py)."""

    content: Mapped[str] = mapped_column(Text, default="")
    reasoning: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    tokens_per_sec: Mapped[float | None] = mapped_column(Float)
    stream_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    # While streaming: the producer renews this; once it lapses, the producer is gone.
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    def usage(self) -> dict[str, int | None]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    def metrics(self) -> dict[str, Any]:
        return {"ttft_ms": self.ttft_ms, "duration_ms": self.duration_ms,
                "tokens_per_sec": self.tokens_per_sec}


class Message(AnswerColumns, Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("thread_id", "position"),
                      Index("ix_messages_status_lease", "status", "lease_expires_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msg"))
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    # Order within the thread; unique, so two replies racing on one thread cannot interleave.
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="complete")
    tool_call_id: Mapped[str | None] = mapped_column(String(64))  # on role "tool" messages
    # The document excerpts an answer was given (the `sources` event), for its citations.
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    thread: Mapped[Thread] = relationship(back_populates="messages")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "thread_id": self.thread_id,
            "role": self.role,
            "content": self.content,
            "reasoning": self.reasoning,
            "status": self.status,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "tool_calls": self.tool_calls,
            "tool_call_id": self.tool_call_id,
            "sources": self.sources,
            "usage": self.usage(),
            "metrics": self.metrics(),
            "error": self.error,
            "stream_id": self.stream_id,
            "created_at": isoformat(self.created_at),
        }
