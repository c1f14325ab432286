"""Reading an uploaded file from a `multipart/form-data` body, within its own size limit.

The body is read whole within `limit` first (body.py: the same 413 for chunked
bodies, the same 400 for broken framing), then parsed from memory, so that the
multipart parser never reads past the limit and every way to break it is a 400.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.formparser import parse_form_data

from ..errors import ApiError
from .body import read_raw_body

# The multipart framing around a file (boundaries, part headers) is allowed on top of
# the file's own limit.
FRAMING_BYTES = 64 * 1024


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str | None
    data: bytes


def document_too_large(limit: int) -> ApiError:
    return ApiError(413, "document_too_large",
                    f"The document is larger than this server accepts ({limit} bytes; "
                    "SLUICE_DOCUMENT_MAX_BYTES).")


def read_uploaded_file(environ: dict[str, Any], limit: int, field: str = "file") -> UploadedFile:
    """The file in `field` of the request's multipart body; a 413 `document_too_large`
    past `limit` bytes, a 400 if the body is not multipart or the field is missing."""
    try:
        raw = read_raw_body(environ, limit + FRAMING_BYTES)
    except ApiError as exc:
        if exc.status == 413:
            raise document_too_large(limit) from exc
        raise
    parsed = {**environ, "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))}
    parsed.pop("wsgi.input_terminated", None)
    try:
        _, _, files = parse_form_data(parsed, silent=False, max_form_parts=100)
    except (HTTPException, ValueError) as exc:
        raise ApiError(400, "malformed_body", "The body is not valid multipart/form-data.") \
            from exc
    try:
        upload = files.get(field)
        if upload is None:
            raise ApiError(400, "missing_file", f"Send the file in the multipart field "
                           f"{field!r}.", param=field)
        data = upload.read()
    finally:
        for stored in files.values():
            stored.close()  # the parser's temporary files
    if len(data) > limit:
        raise document_too_large(limit)
    return UploadedFile(upload.filename or "", upload.mimetype or None, data)
