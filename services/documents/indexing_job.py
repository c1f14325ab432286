"""A `document` job: index a large upload in a worker, its progress on the job's stream.

The stream holds the job's `status` events (`queued`, `connecting`, then `indexing`
with the chunks stored so far) and ends with `done`, whose `document` is the
document as it ended: `ready`, or `failed` with its `error`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import undefer

from ..providers.embeddings import Embedder
from ..storage import Database
from ..storage.documents import Document
from ..storage.work import Job
from ..streaming.event_log import EventLog
from .ingest import index_document

GONE = {"code": "document_not_found", "retryable": False,
        "message": "The document was deleted before it was indexed."}


def run_document_job(db: Database, log: EventLog, job: Job, stream_id: str,
                     prelude: Sequence[tuple[str, dict[str, Any]]],
                     embedder: Embedder | None = None
                     ) -> tuple[str, Any, dict[str, Any] | None]:
    """Index the job's document (its chunks embedded by `embedder`, if any); returns the
    job's (status, result, error)."""
    log.open(stream_id)
    for event_type, payload in prelude:
        log.append(stream_id, event_type, payload)
    document_id = job.options.get("document_id")

    def progress(done: int, total: int) -> None:
        log.append(stream_id, "status", {
            "stage": "indexing", "message": f"Indexed {done} of {total} chunks.",
            "job_id": job.id, "job_status": "running", "document_id": document_id,
            "chunks_done": done, "chunks_total": total})

    with db.transaction() as session:
        document = session.get(Document, document_id, options=[undefer(Document.upload)])
        if document is None:
            view, status, error = None, "failed", GONE
        else:
            if document.status == "processing" and document.upload is not None:
                index_document(session, document, document.upload, progress, embedder)
            view = document.to_dict()
            status = "complete" if document.status == "ready" else "failed"
            error = None if status == "complete" else {
                "code": "unreadable_document", "message": document.error or "Unreadable.",
                "retryable": False}
    log.append(stream_id, "done", {"status": "complete" if status == "complete" else "error",
                                   "job_id": job.id, "document": view, "error": error})
    return status, {"document": view} if view else None, error
