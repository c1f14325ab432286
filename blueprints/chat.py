"""Threads and messages: `/api/v1/threads…`."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context

from services import chat, threads
from services.auth import current_user
from services.jobs import jobs, submit
from services.providers import registry
from services.sse import sse_response
from services.storage import request_session
from services.streaming import streaming

from .errors import json_body

bp = Blueprint("chat", __name__, url_prefix="/api/v1/threads")


@bp.post("")
def create_thread() -> tuple[Response, int]:
    thread = threads.create_thread(request_session(), registry(), current_user(), json_body())
    return jsonify({"thread": thread.to_dict()}), 201


@bp.get("")
def list_threads() -> Response:
    return jsonify({"threads": [t.to_dict() for t in threads.list_threads(request_session(), current_user())]})


@bp.get("/<id:thread_id>")
def get_thread(thread_id: str) -> Response:
    return jsonify({"thread": threads.get_thread(request_session(), current_user(), thread_id).to_dict()})


@bp.patch("/<id:thread_id>")
def rename_thread(thread_id: str) -> Response:
    thread = threads.update_thread(request_session(), registry(), current_user(), thread_id,
                                json_body())
    return jsonify({"thread": thread.to_dict()})


@bp.delete("/<id:thread_id>")
def delete_thread(thread_id: str) -> tuple[str, int]:
    threads.delete_thread(request_session(), streaming(), current_user(), thread_id)
    return "", 204


@bp.get("/<id:thread_id>/messages")
def list_messages(thread_id: str) -> Response:
    messages = threads.list_messages(request_session(), current_user(), thread_id)
    return jsonify({"messages": [m.to_dict() for m in messages]})


@bp.post("/<id:thread_id>/messages")
def send_message(thread_id: str) -> tuple[Response, int]:
    body = json_body()
    if body.get("callback_url") is not None:
        job, new = submit.submit_message(request_session(), jobs().runner, current_user(),
                                         thread_id, body, request.headers.get("Idempotency-Key"),
                                         request.path)
        return jsonify({"job": job.to_dict()}), 202 if new else 200
    user, answer = chat.reply_and_wait(request_session(), registry(), streaming(),
                                       current_user(), thread_id, body)
    body = {"message": user.to_dict(), "response": answer.to_dict()}
    if answer.status == "error":
        # The messages are stored either way; the status tells a client the model failed.
        return jsonify({"error": answer.error, **body}), 502
    return jsonify(body), 200


@bp.post("/<id:thread_id>/messages/stream")
def stream_message(thread_id: str) -> Response:
    frames = chat.stream_reply(request_session(), registry(), streaming(), current_user(),
                              thread_id, json_body())
    return sse_response(stream_with_context(frames))
