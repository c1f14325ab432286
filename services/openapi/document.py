"""The whole description, assembled from the path and schema modules beside this one."""
from __future__ import annotations

from typing import Any

from . import (account_paths, chat_paths, compat_paths, document_paths, events, job_paths,
               memory_paths, operation_paths, schemas)
from .builders import READ_SECURITY

OVERVIEW = """\
Sluice puts LLM providers behind one streaming HTTP API: answers arrive token by token
as Server-Sent Events, or as JSON once complete, and every message is stored.

**Credentials.** With `SLUICE_AUTH=off` (the default) every request acts for one local
user and none are needed. With `SLUICE_AUTH=on`, programs send
`Authorization: Bearer sk-sluice-…` and the page uses its session cookie, echoing the
session's CSRF token in `X-CSRF-Token` on every change. Another user's object is a `404`,
exactly like a missing one.

**Errors** are always JSON, `{"error": {"code", "message"}}` (OpenAI's shape under
`/v1`), including the requests gunicorn refuses before Sluice sees them (also `417
expectation_failed` for an `Expect` other than `100-continue`). `Host` must be one the
server answers to; a state-changing request from another site is refused; request
bodies are `application/json`.
"""

TAGS = [
    {"name": "threads", "description": "Conversations."},
    {"name": "messages", "description": "Asking, and the answers: JSON or a stream."},
    {"name": "streams", "description": "Answers by stream id: resume and stop."},
    {"name": "operations", "description": "AI operations: a form's input in, a checked result "
                                          "out."},
    {"name": "documents", "description": "Your files, searched for the chunks answers cite."},
    {"name": "jobs", "description": "Background work, its webhook, and the signing secret."},
    {"name": "memories", "description": "Facts Sluice keeps about you across threads."},
    {"name": "models", "description": "What this server can answer with."},
    {"name": "accounts", "description": "Who you are, API keys, the cookie session."},
    {"name": "openai", "description": "OpenAI's wire format, for its SDKs and tools."},
    {"name": "service", "description": "Probes, metrics and this description."},
    {"name": "pages", "description": "HTML for people."},
]

SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "sk-sluice-…",
               "description": "An API key (`flask --app wsgi keys create`, or "
                              "`POST /api/v1/keys`)."},
    "session": {"type": "apiKey", "in": "cookie", "name": "sluice_session",
                "description": "The page's signed session, from `POST /login`."},
    "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                  "description": "The session's `csrf_token`, required with the cookie on "
                                 "every request that changes something."},
    "metricsToken": {"type": "http", "scheme": "bearer",
                     "description": "`SLUICE_METRICS_TOKEN`, where it is set."},
}


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route Sluice serves."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sluice", "version": "1", "description": OVERVIEW},
        "tags": TAGS,
        "security": READ_SECURITY,
        "paths": {**chat_paths.paths(), **operation_paths.paths(), **job_paths.paths(),
                  **memory_paths.paths(), **account_paths.paths(), **compat_paths.paths(),
                  **document_paths.paths()},
        "components": {
            "schemas": {**schemas.COMPONENTS, **events.COMPONENTS, **operation_paths.COMPONENTS,
                        **job_paths.COMPONENTS, **memory_paths.COMPONENTS,
                        **compat_paths.COMPONENTS, **document_paths.COMPONENTS},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
