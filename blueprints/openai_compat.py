"""The OpenAI-compatible API: `/v1/chat/completions` and `/v1/models`.

Errors on these routes have OpenAI's shape (blueprints/errors.py), so the official
SDKs raise their own exception classes for them. With SLUICE_AUTH=on the SDK's
`api_key` is a Sluice key, sent as `Authorization: Bearer`, like OpenAI's.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, stream_with_context

from services import openai_compat
from services.auth import current_user
from services.providers import registry
from services.sse import sse_response
from services.streaming import streaming

from .errors import json_body

bp = Blueprint("openai_compat", __name__, url_prefix="/v1")


@bp.post("/chat/completions")
def chat_completions() -> Response:
    core = streaming()
    started = openai_compat.start_completion(registry(), core, current_user(), json_body())
    if started.stream:
        return sse_response(stream_with_context(openai_compat.stream_completion(core, started)))
    return jsonify(openai_compat.wait_for_completion(core, started))


@bp.get("/models")
def list_models() -> Response:
    return jsonify(openai_compat.model_list(registry()))
