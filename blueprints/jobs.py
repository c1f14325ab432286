"""Background jobs and webhooks: `/api/v1/jobs…`, `/api/v1/webhooks/secret`."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context

from services.auth import current_user
from services.jobs import jobs, manage
from services.jobs.events import job_frames
from services.jobs.secrets import rotate_secret
from services.sse import sse_response
from services.storage import request_session
from services.streaming import streaming, to_client
from services.web import ascii_int

from .streams import resume_point

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")
JOBS_LIMIT = 100


@bp.get("/jobs")
def list_jobs() -> Response:
    limit = min(ascii_int(request.args.get("limit", "") or str(JOBS_LIMIT), "'limit'"), JOBS_LIMIT)
    found = manage.list_jobs(request_session(), current_user(), request.args.get("status"), limit)
    return jsonify({"jobs": [job.to_dict() for job in found]})


@bp.get("/jobs/<id:job_id>")
def get_job(job_id: str) -> Response:
    session = request_session()
    return jsonify({"job": manage.job_view(session, manage.get_job(session, current_user(),
                                                                   job_id))})


@bp.post("/jobs/<id:job_id>/cancel")
def cancel_job(job_id: str) -> tuple[Response, int]:
    job = manage.cancel_job(request_session(), jobs().runner, current_user(), job_id)
    return jsonify({"job": job.to_dict()}), 202


@bp.post("/jobs/<id:job_id>/redeliver")
def redeliver(job_id: str) -> tuple[Response, int]:
    job = manage.redeliver(request_session(), jobs().runner, current_user(), job_id)
    return jsonify({"job": job.to_dict()}), 202


@bp.get("/jobs/<id:job_id>/events")
def job_events(job_id: str) -> Response | tuple[str, int]:
    frames = job_frames(request_session(), streaming(), current_user(), job_id, resume_point())
    if frames is None:
        return "", 204
    return sse_response(stream_with_context(to_client(frames)))


@bp.post("/webhooks/secret")
def new_webhook_secret() -> tuple[Response, int]:
    return jsonify({"secret": rotate_secret(request_session(), current_user().id)}), 201
