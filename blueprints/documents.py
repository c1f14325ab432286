"""Documents: `/api/v1/documents…`."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from services import documents
from services.auth import current_user
from services.jobs import jobs
from services.storage import request_session
from services.web import accepts_upload, read_uploaded_file

bp = Blueprint("documents", __name__, url_prefix="/api/v1/documents")


@bp.post("")
@accepts_upload
def upload_document() -> tuple[Response, int]:
    settings = documents.document_settings()
    file = read_uploaded_file(request.environ, settings.max_bytes)
    document, job = documents.upload_document(
        request_session(), current_user(),
        documents.Upload(file.filename, file.content_type, file.data), settings)
    if job is None:
        return jsonify({"document": document.to_dict()}), 201
    jobs().runner.enqueue_run(job.id, 0)
    return jsonify({"document": document.to_dict(), "job": job.to_dict()}), 202


@bp.get("")
def list_documents() -> Response:
    found = documents.list_documents(request_session(), current_user())
    return jsonify({"documents": [document.to_dict() for document in found]})


@bp.get("/<id:document_id>")
def get_document(document_id: str) -> Response:
    document = documents.get_document(request_session(), current_user(), document_id)
    return jsonify({"document": document.to_dict()})


@bp.delete("/<id:document_id>")
def delete_document(document_id: str) -> tuple[str, int]:
    documents.delete_document(request_session(), current_user(), document_id)
    return "", 204
