"""AI operations (refine, summarize, translate, extract, and the operator's own): one-shot
answers defined in TOML, streamed or returned as JSON, stored as runs of their caller."""
from __future__ import annotations

from flask import Flask, current_app

from .definitions import Operation, load_operations

EXTENSION = "sluice.operations"

__all__ = ["Operation", "init_app", "operations"]


def init_app(app: Flask) -> None:
    """Load the built-in operations and SLUICE_OPERATIONS_FILE's (a ConfigError names
    the file, table and key of a mistake)."""
    app.extensions[EXTENSION] = load_operations(app.config["SLUICE_OPERATIONS_FILE"])


def operations(app: Flask | None = None) -> dict[str, Operation]:
    return (app or current_app).extensions[EXTENSION]
