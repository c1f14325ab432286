"""The models this server is configured to serve."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from services.providers import registry

bp = Blueprint("models", __name__, url_prefix="/api/v1/models")


@bp.get("")
def list_models() -> Response:
    return jsonify({"models": registry().models()})
