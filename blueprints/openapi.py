"""`GET /api/v1/openapi.json`: the API's OpenAPI 3.1 description, for viewers and clients."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from services.auth import public
from services.openapi import openapi_document

bp = Blueprint("openapi", __name__)


@bp.get("/api/v1/openapi.json")
@public
def description() -> Response:
    return jsonify(openapi_document())
