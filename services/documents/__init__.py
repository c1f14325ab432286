"""Documents: a user's uploaded files, read into chunks and indexed for retrieval, and
the search that finds the chunks an answer should cite.

`init_app` keeps the upload settings; the answer pipeline calls `search_scope`,
`search` and `sources_prompt` (retrieval.py).
"""
from __future__ import annotations

from flask import Flask, current_app

from ..providers import registry

from .library import (DocumentSettings, Upload, attach_documents, delete_document,
                      get_document, has_documents, list_documents, parse_document_ids, search_scope,
                      upload_document)
from .parsing import DocumentError
from .retrieval import Source, SourcesPrompt, search, sources_prompt

EXTENSION = "sluice.documents"

__all__ = ["DocumentError", "DocumentSettings", "Source", "SourcesPrompt", "Upload",
           "attach_documents", "delete_document", "document_settings", "get_document",
           "has_documents", "init_app", "list_documents", "parse_document_ids", "search", "search_scope",
           "sources_prompt", "upload_document"]


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = DocumentSettings(
        max_bytes=app.config["SLUICE_DOCUMENT_MAX_BYTES"],
        inline_bytes=app.config["SLUICE_DOCUMENT_INLINE_BYTES"],
        embedder=registry(app).embedder)


def document_settings(app: Flask | None = None) -> DocumentSettings:
    return (app or current_app).extensions[EXTENSION]
