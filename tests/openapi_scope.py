"""What the OpenAPI description covers, shared by its two tests: the routes it leaves
out on purpose, and how a Flask rule is written as an OpenAPI path."""
from __future__ import annotations

import re

# Flask endpoints that are not part of the HTTP API, so not described.
NOT_DESCRIBED: dict[str, str] = {
    # Flask's own route for static/ (the page's scripts and styles); its `<path:…>` takes
    # slashes, which an OpenAPI path template cannot express.
    "static": "static files",
}

_CONVERTER = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")


def openapi_path(flask_rule: str) -> str:
    """`/api/v1/threads/<id:thread_id>` as OpenAPI writes it: `/api/v1/threads/{thread_id}`."""
    return _CONVERTER.sub(r"{\1}", flask_rule)
