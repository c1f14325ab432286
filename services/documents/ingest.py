"""Indexing a document: its text read, cut into chunks, and the chunks stored (the
search index follows them by itself, migration 0008). Used by the upload for small
files and by a `document` job for large ones."""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..storage.documents import Document, DocumentChunk
from .chunking import chunk_text
from .parsing import DocumentError, parse

BATCH = 200  # chunks per INSERT, and between two progress reports
Progress = Callable[[int, int], None]  # (chunks stored, chunks in all)


def index_document(session: Session, document: Document, data: bytes,
                   progress: Progress | None = None) -> None:
    """Read `data` into `document`'s chunks and mark it `ready`, or `failed` with the
    reason a user can act on. Nothing is committed: the caller owns the transaction."""
    try:
        parsed = parse(data, document.content_type)
    except DocumentError as exc:
        document.status, document.error, document.upload = "failed", str(exc), None
        return
    chunks = chunk_text(parsed.text, parsed.headings)
    table = DocumentChunk.__table__
    for first in range(0, len(chunks), BATCH):
        rows = [{"document_id": document.id, "position": c.position, "text": c.text,
                 "char_start": c.char_start} for c in chunks[first:first + BATCH]]
        session.execute(insert(table), rows)
        if progress is not None:
            progress(first + len(rows), len(chunks))
    document.status, document.error, document.upload = "ready", None, None
    document.chunk_count = len(chunks)
