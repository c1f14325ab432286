"""Fields several request bodies share (threads, replies, operations): optional text,
the model a request names, resolved to the models that will serve it, and the limits
a request sets on its answer."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from .context.budget import budget_for
from .errors import ApiError
from .providers import ProviderRegistry, ResolvedModel, UnknownModelError
from .providers.catalog import LIMIT_KEYS, AnswerLimits


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


def checked_model(body: dict[str, Any], providers: ProviderRegistry, user: Any) -> str | None:
    """The `model` a body names (a thread's), checked: served here and allowed to `user`."""
    model = model_field(body)
    if model is not None:
        model_chain(providers, model)
        user.check_model(model)
    return model


def model_chain(providers: ProviderRegistry, model: str) -> tuple[ResolvedModel, ...]:
    """The model and its fallbacks, or a 400 if this server cannot serve the model."""
    try:
        return providers.chain(model)
    except UnknownModelError as exc:
        raise ApiError(400, "unknown_model", exc.message, param="model") from exc


def answer_limits(body: dict[str, Any], model: ResolvedModel) -> AnswerLimits:
    """The limits on an answer: the model's (the operator's ceiling), lowered by the
    request's `limits` object where it asks for less; asking for more is a 400."""
    limits = model.settings.answer_limits
    raw = body.get("limits")
    if raw is None:
        return limits
    # Without an operator's max_tokens, no answer can outgrow the model's window.
    ceiling = replace(limits, seconds=limits.seconds or model.settings.timeouts.total,
                      tokens=limits.tokens or budget_for(model.settings).window)
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_limits", "'limits' must be an object such as "
                       '{"max_rounds": 3}.', param="limits")
    chosen: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in LIMIT_KEYS:
            raise ApiError(400, "invalid_limits", f"limits.{key} is not a limit; known: "
                           + ", ".join(LIMIT_KEYS) + ".", param=f"limits.{key}")
        name, kind, least = LIMIT_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, kind) or value < least:
            raise ApiError(400, "invalid_limits", f"limits.{key} must be a number of at "
                           f"least {least}.", param=f"limits.{key}")
        most = getattr(ceiling, name)
        if most is not None and value > most:
            raise ApiError(400, "invalid_limits", f"limits.{key} may be at most {most:g} "
                           f"for {model.id}.", param=f"limits.{key}")
        chosen[name] = value
    return replace(limits, **chosen)
