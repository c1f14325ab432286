"""What Sluice knows about a user across threads: short facts, each a row of its own so
that the user can see, edit and delete every one (services/memory)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, isoformat, new_id, utcnow

# Where a fact came from: the user asked ("remember that …", the API, the page), or a
# model extracted it from an answer (SLUICE_MEMORY_EXTRACTION=on).
MEMORY_SOURCES = ("user", "extracted")


class Memory(Base):
    """One fact about its user, such as "prefers metric units"."""

    __tablename__ = "memories"
    # Every read is "this user's, newest first": one index serves it.
    __table_args__ = (Index("ix_memories_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mem"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    content: Mapped[str] = mapped_column(Text)  # at most MAX_CONTENT characters (services/memory)
    source: Mapped[str] = mapped_column(String(16), default="user")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "content": self.content, "source": self.source,
                "created_at": isoformat(self.created_at), "updated_at": isoformat(self.updated_at)}
