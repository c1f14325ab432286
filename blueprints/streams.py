"""Streams by id: resume (`/events`) and stop (`/cancel`)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context

from services.auth import current_user
from services.sse import sse_response
from services.storage import request_session
from services.streaming import cancel_stream, stream_frames, to_client
from services.web import ascii_int

bp = Blueprint("streams", __name__, url_prefix="/api/v1/streams")


def resume_point() -> int:
    """The last event id the client has: `Last-Event-ID` header, else `?after=`, else 0."""
    header = request.headers.get("Last-Event-ID", "")
    if header.strip():
        return ascii_int(header, "Last-Event-ID", "invalid_event_id")
    return ascii_int(request.args.get("after", "").strip() or "0", "'after'", "invalid_event_id")


@bp.get("/<id:stream_id>/events")
def events(stream_id: str) -> Response | tuple[str, int]:
    frames = stream_frames(request_session(), current_user().id, stream_id, resume_point())
    if frames is None:
        return "", 204  # ended, and the client has all of it: EventSource stops here
    return sse_response(stream_with_context(to_client(frames)))


@bp.post("/<id:stream_id>/cancel")
def cancel(stream_id: str) -> tuple[Response, int]:
    return jsonify(cancel_stream(request_session(), current_user().id, stream_id)), 202
