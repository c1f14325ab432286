"""Summaries of a thread's earlier messages, sent instead of them once it grows long.

Each summary covers the thread up to a message position and is built from the one
before it plus the messages after that, so a long thread is never summarized from
its start again. The messages themselves stay stored and listed.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, isoformat, new_id, utcnow


class ThreadSummary(Base):
    """What the thread said up to `upto_position`, in the summarizer model's words."""

    __tablename__ = "thread_summaries"
    __table_args__ = (Index("ix_thread_summaries_thread_upto", "thread_id", "upto_position"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sum"))
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    # The position of the last message it covers, and that message's id (what the API
    # shows: positions are internal).
    upto_position: Mapped[int] = mapped_column(Integer)
    upto_message_id: Mapped[str] = mapped_column(String(40))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))  # the model that wrote it
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"content": self.content, "upto_message_id": self.upto_message_id,
                "created_at": isoformat(self.created_at)}
