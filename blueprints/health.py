"""Liveness and readiness probes for load balancers and orchestrators."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from services.auth import public
from services.health import readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@public
def readyz() -> tuple[Response, int]:
    checks = readiness()
    ready = all(state == "ok" for state in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), (
        200 if ready else 503)
