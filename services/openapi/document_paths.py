"""Documents: `/api/v1/documents…` (blueprints/documents.py)."""
from __future__ import annotations

from typing import Any

from .builders import (READ_SECURITY, WRITE_SECURITY, Schema, closed, errors, json_response,
                       nullable, operation, path_id, ref)
from .schemas import COUNT, TIMESTAMP, sluice_id

DOCUMENT_ID = path_id("document_id", "A document's id (`doc_…`).")
NOT_FOUND = ("document_not_found",)

DOCUMENT = closed({
    "id": sluice_id("doc", "The document's id."),
    "filename": {"type": "string"},
    "content_type": {"enum": ["text/plain", "text/markdown", "text/html", "application/pdf"]},
    "size_bytes": COUNT,
    "status": {"enum": ["processing", "ready", "failed"],
               "description": "`processing` while a job indexes it; only `ready` ones are "
                              "searched."},
    "error": nullable({"type": "string", "description": "Why it could not be read."}),
    "chunk_count": COUNT,
    "created_at": TIMESTAMP,
}, description="An uploaded file, its text split into chunks for retrieval.")

COMPONENTS: dict[str, Schema] = {"Document": DOCUMENT}
ONE = closed({"document": ref("Document")})

UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "A .txt, .md, .html or .pdf file (by its Content-Type, else "
                                "its name), at most `SLUICE_DOCUMENT_MAX_BYTES`."}}},
    "encoding": {"file": {"contentType": "text/plain, text/markdown, text/html, "
                                         "application/pdf, application/octet-stream"}}}}}
UPLOAD_ERRORS = {400: ("malformed_body", "missing_file", "empty_document",
                       "unreadable_document"),
                 413: ("document_too_large",),
                 415: ("unsupported_document_type",)}


def _upload() -> dict[str, Any]:
    return operation(
        "uploadDocument", "Upload a document", "documents",
        {"201": json_response("Read and indexed at once (a small file): `ready`.", ONE),
         "202": json_response("A large file: stored `processing`, indexed by a `document` job "
                              "whose stream (`GET /api/v1/jobs/{job_id}/events`) reports "
                              "progress.", closed({"document": ref("Document"),
                                                   "job": ref("Job")}))},
        errors(changes=True, own=UPLOAD_ERRORS), body=UPLOAD_BODY, security=WRITE_SECURITY,
        description="Multipart, the file in the field `file`. A file that cannot be read "
                    "(a broken or hostile PDF, no text) is `400 unreadable_document` when "
                    "read at once, a `failed` document when read by a job.")


def paths() -> dict[str, Any]:
    return {
        "/api/v1/documents": {"post": _upload(), "get": operation(
            "listDocuments", "List your documents", "documents",
            {"200": json_response("Newest first.", closed({"documents": {
                "type": "array", "items": ref("Document")}}))},
            errors(), security=READ_SECURITY)},
        "/api/v1/documents/{document_id}": {"parameters": [DOCUMENT_ID], "get": operation(
            "getDocument", "One document", "documents",
            {"200": json_response("The document.", ONE)},
            errors(own={404: NOT_FOUND}), security=READ_SECURITY), "delete": operation(
            "deleteDocument", "Delete a document", "documents",
            {"204": {"description": "Deleted, with its chunks, its index entries and its "
                                    "attachments to threads."}},
            errors(changes=True, own={404: NOT_FOUND}), security=WRITE_SECURITY)},
    }
