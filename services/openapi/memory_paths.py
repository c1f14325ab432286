"""The user's memories: `/api/v1/memories…` (blueprints/memories.py)."""
from __future__ import annotations

from typing import Any

from ..memory.store import MAX_CONTENT, MAX_MEMORIES
from .builders import (READ_SECURITY, WRITE_SECURITY, Schema, closed, errors, json_body,
                       json_response, operation, path_id, ref, with_links)
from .schemas import TIMESTAMP, sluice_id

MEMORY_ID = path_id("memory_id", "A memory's id (`mem_…`).")
NOT_FOUND = ("memory_not_found",)

MEMORY = closed({
    "id": sluice_id("mem", "The memory's id."),
    "content": {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT,
                "description": "One fact about you, as later answers are given it."},
    "source": {"enum": ["user", "extracted"],
               "description": "`user`: you added it, or asked (\"remember that …\"); "
                              "`extracted`: picked from an answer "
                              "(`SLUICE_MEMORY_EXTRACTION=on`)."},
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
}, description="A fact Sluice keeps about you across threads and adds to the system prompt.")

MEMORY_FIELDS: Schema = {"type": "object", "required": ["content"], "properties": {
    "content": {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT, "pattern": "\\S",
                "description": "The fact; stored without surrounding blanks. Missing, blank "
                               "or longer is `400 invalid_content`."}}}

COMPONENTS: dict[str, Schema] = {"Memory": MEMORY, "MemoryFields": MEMORY_FIELDS}


def _one(description: str) -> dict[str, Any]:
    return json_response(description, closed({"memory": ref("Memory")}))


def _memories() -> dict[str, Any]:
    return {"get": operation(
        "listMemories", "What Sluice remembers about you", "memories",
        {"200": json_response("Your memories, newest first.", closed(
            {"memories": {"type": "array", "items": ref("Memory")}}))},
        errors(), security=READ_SECURITY),
        "post": operation(
        "createMemory", "Remember a fact", "memories",
        {"201": with_links(_one("The stored memory."), "memory_id", "/memory/id",
                           "updateMemory", "deleteMemory")},
        errors(reads_body=True, changes=True, own={400: ("invalid_content",),
                                                   409: ("too_many_memories",)}),
        body=json_body(ref("MemoryFields")), security=WRITE_SECURITY,
        description=f"A user keeps at most {MAX_MEMORIES} memories.")}


def _memory() -> dict[str, Any]:
    return {"parameters": [MEMORY_ID], "patch": operation(
        "updateMemory", "Change a memory's text", "memories", {"200": _one("The changed memory.")},
        errors(reads_body=True, changes=True, own={400: ("invalid_content",), 404: NOT_FOUND}),
        body=json_body(ref("MemoryFields")), security=WRITE_SECURITY),
        "delete": operation(
        "deleteMemory", "Forget a memory", "memories",
        {"204": {"description": "Deleted; later answers no longer see it."}},
        errors(changes=True, own={404: NOT_FOUND}), security=WRITE_SECURITY)}


def paths() -> dict[str, Any]:
    """The path items of memories, by path."""
    return {"/api/v1/memories": _memories(), "/api/v1/memories/{memory_id}": _memory()}
