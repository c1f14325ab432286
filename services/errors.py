"""The error a service raises when a request cannot be served as asked."""
from __future__ import annotations


class ApiError(Exception):
    """Becomes `{"error": {"code", "message"}}` with `status`, before any stream starts."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
