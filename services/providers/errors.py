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
    ├── ContentFilterError              content_filter  no   (the provider withheld the answer)
    └── IncompleteStreamError           incomplete_stream yes (body ended before its end marker)

A status error may also come without an HTTP status, from an error event inside
a stream (`error_for_type`), e.g. Anthropic's mid-stream `overloaded_error`.

The streaming core turns any of these into an `error` event (`code`, `message`,
`retryable`) followed by `done` with status `error`.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
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
    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, from a Retry-After header


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


class ContentFilterError(ProviderError):
    code = "content_filter"


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


def json_object(text: str, provider: str, unit: str) -> dict[str, Any]:
    """One unit of a provider's stream (an SSE event's data, an NDJSON line) as the JSON
    object it must be; anything else means the provider broke its own format."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UpstreamStreamError(
            f"{provider} sent {unit} that is not JSON: {text[:100]!r}") from exc
    if not isinstance(value, dict):
        raise UpstreamStreamError(f"{provider} sent an unexpected {unit}: {text[:100]!r}")
    return value


def error_message(body: Any, fallback: str) -> str:
    """The human message in a provider's error body (`{"error": {"message": …}}` and kin)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
    return fallback


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    raw = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP date; rare from model APIs, and the backoff covers it


def status_error(status: int, body_text: str, provider: str,
                 headers: Mapping[str, str] | None = None) -> ProviderStatusError:
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
    return cls(f"{provider} answered {status}: {error_message(body, fallback)}", status,
               _retry_after(headers))


_BY_TYPE: dict[str, type[ProviderStatusError]] = {
    "overloaded_error": OverloadedError,
    "service_unavailable_error": OverloadedError,
    "rate_limit_error": RateLimitError,
    "rate_limit_exceeded": RateLimitError,
    "insufficient_quota": RateLimitError,
    "authentication_error": AuthenticationError,
    "permission_error": AuthenticationError,
    "not_found_error": NotFoundError,
    "invalid_request_error": BadRequestError,
    "api_error": UpstreamServerError,
    "server_error": UpstreamServerError,
}


def error_for_type(error_type: str | None, message: str, provider: str) -> ProviderError:
    """The exception for an error a provider reports by type name inside a stream.

    Known types keep their meaning (an overload is retryable, a bad request is
    not); an unknown type is an `UpstreamStreamError`.
    """
    cls = _BY_TYPE.get(error_type or "")
    text = f"{provider} reported {error_type or 'an error'}: {message}"
    return cls(text) if cls is not None else UpstreamStreamError(text)
