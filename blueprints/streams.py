"""Streams by id: resume (`/events`) and stop (`/cancel`)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context

from services.errors import ApiError
from services.sse import sse_response
from services.storage import request_session
from services.streaming import cancel_stream, stream_frames

bp = Blueprint("streams", __name__, url_prefix="/api/v1/streams")


def _resume_point() -> int:
    """The last event id the client has: `Last-Event-ID` header, else `?after=`, else 0."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    if not raw.strip().isdigit():
        raise ApiError(400, "invalid_event_id",
                       "Last-Event-ID and 'after' must be a non-negative integer.")
    return int(raw)


@bp.get("/<stream_id>/events")
def events(stream_id: str) -> Response:
    frames = stream_frames(request_session(), stream_id, _resume_point())
    return sse_response(stream_with_context(frames))


@bp.post("/<stream_id>/cancel")
def cancel(stream_id: str) -> tuple[Response, int]:
    return jsonify(cancel_stream(request_session(), stream_id)), 202
