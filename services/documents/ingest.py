"""Indexing a document: its text read, cut into chunks, and the chunks stored (the
search index follows them by itself, migration 0008). Used by the upload for small
files and by a `document` job for large ones.

With an embedding model, each batch of chunks is embedded before it is stored. An
embedding failure does not fail the document: it is logged, the rest of the
document's chunks are stored without embeddings (no more calls to a provider that
just failed), and full-text search finds them as before.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..providers.embeddings import Embedder
from ..providers.errors import ProviderError
from ..storage.documents import Document, DocumentChunk
from .chunking import chunk_text
from .parsing import DocumentError, parse
from .vectors import pack

logger = logging.getLogger(__name__)

BATCH = 200  # chunks per INSERT, and between two progress reports
Progress = Callable[[int, int], None]  # (chunks stored, chunks in all)


def index_document(session: Session, document: Document, data: bytes,
                   progress: Progress | None = None, embedder: Embedder | None = None) -> None:
    """Read `data` into `document`'s chunks and mark it `ready`, or `failed` with the
    reason a user can act on. Nothing is committed: the caller owns the transaction.
    The reading (seconds, for a big PDF) comes before anything is written, so on SQLite
    no write lock is held while it runs."""
    try:
        parsed = parse(data, document.content_type)
    except DocumentError as exc:
        document.status, document.error, document.upload = "failed", str(exc), None
        return
    session.flush()  # a new document's row, before its chunks point at it
    chunks = chunk_text(parsed.text, parsed.headings)
    table = DocumentChunk.__table__
    for first in range(0, len(chunks), BATCH):
        rows = [{"document_id": document.id, "position": c.position, "text": c.text,
                 "char_start": c.char_start, "embedding": None, "embedding_model": None}
                for c in chunks[first:first + BATCH]]
        if embedder is not None and not _embed_rows(rows, embedder, document.id):
            embedder = None
        session.execute(insert(table), rows)
        if progress is not None:
            progress(first + len(rows), len(chunks))
    document.status, document.error, document.upload = "ready", None, None
    document.chunk_count = len(chunks)


def _embed_rows(rows: Sequence[dict[str, Any]], embedder: Embedder, document_id: str) -> bool:
    """Give `rows` their embeddings; False (and logged, rows left without) if that failed."""
    try:
        vectors = embedder.embed([row["text"] for row in rows])
    except ProviderError as exc:
        logger.warning("document %s is indexed without embeddings (full-text search only): "
                       "%s failed: %s", document_id, embedder.id, exc.message)
        return False
    for row, vector in zip(rows, vectors):
        row["embedding"], row["embedding_model"] = pack(vector), embedder.id
    return True
