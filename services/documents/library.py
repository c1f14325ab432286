"""A user's documents: upload, list, delete, and the documents a thread attaches.

Every read of a document goes through `owned`, so another user's document is not
found, exactly like a missing one (API.md: a `404`, never a `403`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..auth import Identity
from ..errors import ApiError
from ..providers.embeddings import Embedder
from ..storage.documents import Document, ThreadDocument
from ..storage.models import Thread, new_id, utcnow
from ..storage.owned import owned
from ..storage.work import Job
from ..web.upload import document_too_large
from ..webhooks.signing import new_message_id
from .ingest import index_document
from .parsing import FORMATS, content_type_for

MAX_FILENAME = 255
MAX_ATTACHED = 100


@dataclass(frozen=True)
class DocumentSettings:
    max_bytes: int  # larger uploads are a 413
    inline_bytes: int  # larger ones are indexed by a job
    embedder: Embedder | None = None  # SLUICE_EMBEDDING_MODEL; None: full-text search only


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str | None  # as the client declared it
    data: bytes


def _not_found(document_id: str) -> ApiError:
    return ApiError(404, "document_not_found", f"There is no document {document_id!r}.")


def get_document(session: Session, user: Identity, document_id: str) -> Document:
    document = session.scalars(owned(select(Document), user)
                               .where(Document.id == document_id)).first()
    if document is None:
        raise _not_found(document_id)
    return document


def list_documents(session: Session, user: Identity) -> list[Document]:
    """Newest first."""
    return list(session.scalars(owned(select(Document), user)
                                .order_by(Document.created_at.desc(), Document.id)))


def delete_document(session: Session, user: Identity, document_id: str) -> None:
    """Delete a document; its chunks, index rows and attachments go with it (cascades)."""
    get_document(session, user, document_id)
    session.execute(delete(Document).where(Document.id == document_id))
    session.commit()


def check_upload(upload: Upload, settings: DocumentSettings) -> str:
    """The upload's content type, or the 4xx that refuses it."""
    if len(upload.data) > settings.max_bytes:
        raise document_too_large(settings.max_bytes)
    content_type = content_type_for(upload.filename, upload.content_type)
    if content_type is None:
        raise ApiError(415, "unsupported_document_type",
                       f"Sluice reads {', '.join(sorted(FORMATS))} documents (.txt, .md, "
                       ".html, .pdf); this one is "
                       f"{(upload.content_type or 'of an unknown type')[:100]}.")
    if not upload.data:
        raise ApiError(400, "empty_document", "The uploaded file is empty.")
    return content_type


def upload_document(session: Session, user: Identity, upload: Upload,
                    settings: DocumentSettings) -> tuple[Document, Job | None]:
    """Store an upload. A small one is indexed now (ready, or a 400 saying why it cannot
    be read, and nothing is kept); a large one is kept `processing` with a `document`
    job, returned uncommitted-free: both rows are committed here, the caller queues it."""
    content_type = check_upload(upload, settings)
    filename = " ".join(upload.filename.split())[:MAX_FILENAME] or "document"
    document = Document(id=new_id("doc"), user_id=user.id, filename=filename,
                        content_type=content_type, size_bytes=len(upload.data),
                        status="processing", chunk_count=0, created_at=utcnow())
    session.add(document)
    if len(upload.data) > settings.inline_bytes:
        document.upload = upload.data
        job = _document_job(user, document.id)
        session.add(job)
        session.commit()
        return document, job
    index_document(session, document, upload.data, embedder=settings.embedder)
    if document.status == "failed":
        session.rollback()
        raise ApiError(400, "unreadable_document", document.error or "Unreadable document.")
    session.commit()
    return document, None


def _document_job(user: Identity, document_id: str) -> Job:
    """A job without a webhook (no `callback_url`): its progress is its stream."""
    return Job.queued(user.id, "document", new_id("str"), {"document_id": document_id},
                      new_message_id())


def parse_document_ids(body: dict[str, Any]) -> list[str] | None:
    """The body's `documents`: a list of ids ([] for null, as for `model` and
    `system`, null clears), or None when absent."""
    if "documents" not in body:
        return None
    value = body["documents"]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) \
            or len(value) > MAX_ATTACHED:
        raise ApiError(400, "invalid_field", "'documents' must be a list of at most "
                       f"{MAX_ATTACHED} document ids.", param="documents")
    return list(dict.fromkeys(value))


def attach_documents(session: Session, user: Identity, thread: Thread,
                     document_ids: list[str]) -> None:
    """Make `document_ids` (the user's, not failed) the thread's attachments; nothing
    is committed."""
    found = {d.id: d for d in session.scalars(owned(select(Document), user)
                                              .where(Document.id.in_(document_ids)))}
    for document_id in document_ids:
        if document_id not in found:
            raise _not_found(document_id)
        if found[document_id].status == "failed":
            raise ApiError(400, "document_failed", f"The document {document_id!r} could not "
                           "be read, so it cannot be attached.", param="documents")
    thread.attachments = [ThreadDocument(document_id=d) for d in document_ids]


def has_documents(session: Session, user: Identity) -> bool:
    """Whether the user has a document ready to search (before saying "searching")."""
    return session.scalar(owned(select(Document.id), user)
                          .where(Document.status == "ready").limit(1)) is not None


def search_scope(session: Session, user: Identity, thread_id: str) -> list[str] | None:
    """The documents an answer in the thread searches: its attachments, or None (all of
    the user's) when it has none."""
    attached = list(session.scalars(
        select(ThreadDocument.document_id).join(Thread, Thread.id == ThreadDocument.thread_id)
        .where(ThreadDocument.thread_id == thread_id, Thread.user_id == user.id)))
    return attached or None
