"""The error a service raises when a request cannot be served as asked."""
from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """Becomes `{"error": {"code", "message"}}` with `status`, before any stream starts;
    `headers` go with it where HTTP asks for them (`WWW-Authenticate` on a 401)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
