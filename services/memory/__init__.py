"""Memory: facts about a user ("prefers metric units") kept across threads, saved when the
user asks or, with SLUICE_MEMORY_EXTRACTION=on, picked from answers; always listed,
editable and deletable by their user, and given to the model as a short system block."""
from __future__ import annotations

from flask import Flask, current_app

from .commands import remembered
from .extraction import extraction_prompt, parse_extracted
from .prompt import memory_prompt, user_memory_prompt
from .store import (MAX_CONTENT, MAX_MEMORIES, create_memory, delete_memory, get_memory,
                    list_memories, owned, remember, store_extracted, update_memory)

EXTENSION = "sluice.memory"

__all__ = ["MAX_CONTENT", "MAX_MEMORIES", "create_memory", "delete_memory", "extraction_enabled",
           "extraction_prompt", "get_memory", "init_app", "list_memories", "memory_prompt",
           "owned", "parse_extracted", "remember", "remembered", "store_extracted",
           "update_memory", "user_memory_prompt"]


def init_app(app: Flask) -> None:
    """Keep whether answers are mined for facts: off unless the operator turns it on,
    as it sends each exchange to a model a second time and stores what the user did not
    explicitly ask to keep."""
    app.extensions[EXTENSION] = {"extraction": app.config["SLUICE_MEMORY_EXTRACTION"] == "on"}


def extraction_enabled(app: Flask | None = None) -> bool:
    """Whether to ask a model for durable facts after an answer (SLUICE_MEMORY_EXTRACTION)."""
    return bool((app or current_app).extensions[EXTENSION]["extraction"])
