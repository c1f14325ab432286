"""The OpenAPI 3.1 description of Sluice's HTTP API, written by hand from small pieces
(no generator reads the routes: tests/test_openapi_document.py holds the two together)."""
from __future__ import annotations

from functools import cache
from typing import Any

from .document import build_document

__all__ = ["build_document", "openapi_document"]


@cache
def openapi_document() -> dict[str, Any]:
    """The description, built once per process: it depends on nothing but this code.
    Callers must not change it."""
    return build_document()
