"""What the OpenAPI description covers, shared by its two tests: the routes it describes
before they are served here, and the routes it leaves out on purpose."""
from __future__ import annotations

import re

# Described in services/openapi/compat_paths.py, but served by branches that are being
# built in parallel and are not merged yet: `openai-compat` (the OpenAI-compatible API)
# and `metrics` (Prometheus). Until they land, the routes do not exist here: the drift
# test allows them to be missing and the fuzz test skips them, saying so. Once a branch
# has landed, remove its entries, and both tests hold the route to its description.
FROM_OTHER_BRANCHES: dict[tuple[str, str], str] = {
    ("GET", "/metrics"): "metrics",
}

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
