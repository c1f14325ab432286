"""Stored documents: a user's uploaded files, their text in chunks, and the threads that
use them.

Search reads the chunks through an index the migration builds beside them (0008):
an FTS5 table kept in step by triggers on SQLite, a generated `tsvector` column with
a GIN index on PostgreSQL. Neither is declared here: the models describe what every
database has, and migrations/env.py leaves the index out of the drift check.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, isoformat, new_id, utcnow

# Names the search index gives its parts, which the drift check must not compare.
SEARCH_TABLE_PREFIX = "document_chunks_fts"
SEARCH_COLUMN = "search_vector"
SEARCH_INDEX = "ix_document_chunks_search"


class Document(Base):
    """An uploaded file: `processing` while its text is read and indexed, then `ready`
    (searchable) or `failed` (with `error` saying why)."""

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("doc"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="processing")
    error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    # The uploaded bytes while a job has yet to read them (a worker may run in another
    # process or machine); cleared once the document is ready or failed.
    upload: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "content_type": self.content_type,
                "size_bytes": self.size_bytes, "status": self.status, "error": self.error,
                "chunk_count": self.chunk_count, "created_at": isoformat(self.created_at)}


class DocumentChunk(Base):
    """A piece of a document's text, the unit search finds and a prompt cites. Its integer
    id is the search index's row id (SQLite's FTS5 `rowid`)."""

    __tablename__ = "document_chunks"
    __table_args__ = (UniqueConstraint("document_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0, 1, 2 … within the document
    text: Mapped[str] = mapped_column(Text)
    char_start: Mapped[int] = mapped_column(Integer)  # offset in the document's text
    # Unit-length float32 vector (documents/vectors.py), and the model that made it; both
    # null without SLUICE_EMBEDDING_MODEL or when embedding failed (migration 0010).
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    embedding_model: Mapped[str | None] = mapped_column(String(200))


class ThreadDocument(Base):
    """A document attached to a thread: its answers search these (none: all the user's)."""

    __tablename__ = "thread_documents"

    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"),
                                           primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"),
                                             primary_key=True, index=True)
