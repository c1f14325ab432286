"""Operations of the service: liveness and readiness probes for load balancers and
orchestrators, and Prometheus' scrape."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from services.auth import public
from services.health import readiness
from services.metrics import scrape

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


@bp.get("/metrics")
@public  # to users' credentials: it has its own rule (services/metrics/access.py)
def metrics() -> Response:
    """For clients on this host, or any with `SLUICE_METRICS_TOKEN` (services/metrics/)."""
    body, content_type = scrape(request.remote_addr, request.headers)
    return Response(body, content_type=content_type)
