"""The user's memories: `/api/v1/memories…`."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from services import memory
from services.auth import current_user
from services.storage import request_session

from .errors import json_body

bp = Blueprint("memories", __name__, url_prefix="/api/v1/memories")


@bp.get("")
def list_memories() -> Response:
    found = memory.list_memories(request_session(), current_user())
    return jsonify({"memories": [m.to_dict() for m in found]})


@bp.post("")
def create_memory() -> tuple[Response, int]:
    created = memory.create_memory(request_session(), current_user(), json_body())
    return jsonify({"memory": created.to_dict()}), 201


@bp.patch("/<id:memory_id>")
def update_memory(memory_id: str) -> Response:
    updated = memory.update_memory(request_session(), current_user(), memory_id, json_body())
    return jsonify({"memory": updated.to_dict()})


@bp.delete("/<id:memory_id>")
def delete_memory(memory_id: str) -> tuple[str, int]:
    memory.delete_memory(request_session(), current_user(), memory_id)
    return "", 204
