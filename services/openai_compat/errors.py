"""Errors as OpenAI writes them, for every response under `/v1`."""
from __future__ import annotations

from typing import Any

from ..errors import ApiError


def error_type(status: int) -> str:
    """OpenAI's `type` for a status; clients (the SDKs) go by the status itself."""
    if status >= 500:
        return "server_error"
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error"


def error_object(status: int, code: str, message: str,
                 param: str | None = None) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}`: Sluice's own error object
    (`code`, `message`) with OpenAI's two further fields, so either kind of client reads it."""
    return {"error": {"message": message, "type": error_type(status), "param": param,
                      "code": code}}


def invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    """A 400 that names the request field at fault, as OpenAI's do."""
    return ApiError(400, code, message, param=param)


def wrong_type(param: str, expected: str) -> ApiError:
    return invalid(param, f"Invalid type for '{param}': expected {expected}.", "invalid_type")


def missing(param: str) -> ApiError:
    return invalid(param, f"Missing required parameter: '{param}'.",
                   "missing_required_parameter")
