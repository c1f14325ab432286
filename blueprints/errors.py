"""Every error is JSON: `{"error": {"code", "message"}}` with the fitting status.

Also the one place that reads a request's JSON body, so that malformed input
fails the same way everywhere.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from services.errors import ApiError
from services.web import read_json_body

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def json_body() -> dict[str, Any]:
    """The request's JSON object, read within the size, depth and text limits
    (services/web/body.py); a 4xx if it is not one. An empty body is `{}`."""
    return read_json_body(request.environ, current_app.config["MAX_CONTENT_LENGTH"])


def _snake_case(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _api_error(exc: ApiError) -> tuple[Response, int]:
    response, status = error_response(exc.status, exc.code, exc.message)
    response.headers.update(exc.headers)
    return response, status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    code = "payload_too_large" if status == 413 else _snake_case(exc.name)
    return error_response(status, code, exc.description or exc.name)


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    logger.exception("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal_error", "Something went wrong on the server.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
