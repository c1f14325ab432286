"""Fields several request bodies share (threads, replies, operations): optional text,
and the model a request names, resolved to the models that will serve it."""
from __future__ import annotations

from typing import Any

from .errors import ApiError
from .providers import ProviderRegistry, ResolvedModel, UnknownModelError


def optional_text(body: dict[str, Any], field: str, limit: int | None = None) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{field!r} must be a string.", param=field)
    if limit is not None and len(value) > limit:
        raise ApiError(400, "invalid_field", f"{field!r} is longer than {limit} characters.",
                       param=field)
    return value


def model_field(body: dict[str, Any]) -> str | None:
    """The `model` a request names, if any; an empty name is an error, never "default"."""
    model = optional_text(body, "model", 200)
    if model is not None and not model.strip():
        raise ApiError(400, "invalid_field", "'model' must be a model id such as demo/echo.",
                       param="model")
    return model


def model_chain(providers: ProviderRegistry, model: str) -> tuple[ResolvedModel, ...]:
    """The model and its fallbacks, or a 400 if this server cannot serve the model."""
    try:
        return providers.chain(model)
    except UnknownModelError as exc:
        raise ApiError(400, "unknown_model", exc.message, param="model") from exc
