"""AI operations: `/api/v1/operations…`."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context

from services.auth import current_user
from services.jobs import jobs, submit
from services.operations import operations, runs
from services.providers import registry
from services.sse import sse_response
from services.storage import request_session
from services.streaming import streaming
from services.web import ascii_int

from .errors import json_body

bp = Blueprint("operations", __name__, url_prefix="/api/v1/operations")
RUNS_LIMIT = 100


@bp.get("")
def list_operations() -> Response:
    return jsonify({"operations": [runs.describe(op) for op in operations().values()]})


@bp.get("/runs")
def list_runs() -> Response:
    limit = min(ascii_int(request.args.get("limit", "") or str(RUNS_LIMIT), "'limit'"), RUNS_LIMIT)
    found = runs.list_runs(request_session(), current_user(), request.args.get("operation"),
                           request.args.get("status"), limit)
    return jsonify({"runs": [run.to_dict() for run in found]})


@bp.get("/runs/<id:run_id>")
def get_run(run_id: str) -> Response:
    return jsonify({"run": runs.get_run(request_session(), current_user(), run_id).to_dict()})


@bp.post("/<id:name>")
def run_operation(name: str) -> tuple[Response, int]:
    body = json_body()
    if body.get("callback_url") is not None:
        job, new = submit.submit_operation(request_session(), jobs().runner, current_user(),
                                           name, body, request.headers.get("Idempotency-Key"),
                                           request.path)
        return jsonify({"job": job.to_dict()}), 202 if new else 200
    run = runs.run_and_wait(request_session(), operations(), registry(), streaming(),
                            current_user(), name, body)
    body = run.answer()
    if run.status == "error":
        # Stored either way; the error says why there is no usable result.
        return jsonify({"error": run.error, **body}), 502
    return jsonify(body), 200


@bp.post("/<id:name>/stream")
def stream_operation(name: str) -> Response:
    frames = runs.stream(request_session(), operations(), registry(), streaming(),
                         current_user(), name, json_body())
    return sse_response(stream_with_context(frames))
