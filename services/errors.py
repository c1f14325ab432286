"""The error a service raises when a request cannot be served as asked."""
from __future__ import annotations


class ApiError(Exception):
    """Becomes `{"error": {"code", "message"}}` with `status`, before any stream starts.

    `param` names the request field at fault, for the OpenAI-compatible routes, whose
    errors say so (`{"error": {…, "type", "param"}}`); the rest of the API leaves it out.
    `headers` go with the answer.
    """

    def __init__(self, status: int, code: str, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}  # e.g. WWW-Authenticate, Retry-After
