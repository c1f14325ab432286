"""Liveness and readiness probes for load balancers and orchestrators."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from services.storage import database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        database().ping()
    except SQLAlchemyError:
        return jsonify({"status": "unavailable", "checks": {"database": "unreachable"}}), 503
    return jsonify({"status": "ok", "checks": {"database": "ok"}}), 200
