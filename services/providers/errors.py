"""Provider failures: one exception tree, each class with its public error code.

    ProviderError                       code            retryable
    ├── UnknownModelError               unknown_model   no   (rejected before any call)
    ├── ProviderConnectionError         upstream_unreachable  yes
    │   └── ProviderTimeoutError        timeout         yes
    ├── ProviderStatusError             upstream_error  (by status)
    │   ├── BadRequestError        400  upstream_bad_request  no
    │   ├── AuthenticationError 401/403 upstream_auth   no
    │   ├── NotFoundError          404  upstream_not_found    no
    │   ├── RateLimitError         429  rate_limited    yes
    │   ├── OverloadedError    503/529  overloaded      yes
    │   └── UpstreamServerError    5xx  upstream_error  yes
    ├── UpstreamStreamError             upstream_error  no   (error object inside a stream,
    │                                                        or a body that is not the format)
    └── IncompleteStreamError           incomplete_stream yes (body ended before its end marker)

The streaming core turns any of these into an `error` event (`code`, `message`,
`retryable`) followed by `done` with status `error`.
"""
from __future__ import annotations

import json
from typing import Any


class ProviderError(Exception):
    code = "upstream_error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownModelError(ProviderError):
    code = "unknown_model"


class ProviderConnectionError(ProviderError):
    code = "upstream_unreachable"
    retryable = True


class ProviderTimeoutError(ProviderConnectionError):
    code = "timeout"


class ProviderStatusError(ProviderError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BadRequestError(ProviderStatusError):
    code = "upstream_bad_request"


class AuthenticationError(ProviderStatusError):
    code = "upstream_auth"


class NotFoundError(ProviderStatusError):
    code = "upstream_not_found"


class RateLimitError(ProviderStatusError):
    code = "rate_limited"
    retryable = True


class OverloadedError(ProviderStatusError):
    code = "overloaded"
    retryable = True


class UpstreamServerError(ProviderStatusError):
    retryable = True


class UpstreamStreamError(ProviderError):
    pass


class IncompleteStreamError(ProviderError):
    code = "incomplete_stream"
    retryable = True


_BY_STATUS: dict[int, type[ProviderStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
    503: OverloadedError,
    529: OverloadedError,
}


def error_message(body: Any, fallback: str) -> str:
    """The human message in a provider's error body (`{"error": {"message": …}}` and kin)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
    return fallback


def status_error(status: int, body_text: str, provider: str) -> ProviderStatusError:
    """The exception for an HTTP error answer from a provider."""
    if status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = UpstreamServerError
    else:
        cls = BadRequestError
    try:
        body: Any = json.loads(body_text)
    except ValueError:
        body = None
    fallback = body_text.strip()[:200] or f"HTTP {status}"
    return cls(f"{provider} answered {status}: {error_message(body, fallback)}", status)
