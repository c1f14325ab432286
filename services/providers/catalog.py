"""Model settings: global ones from the environment, per-model ones from a TOML file.

The file (`SLUICE_MODELS_FILE`) has one table per model id:

    [models."openai/gpt-4o-mini"]
    temperature = 0.2
    max_tokens = 1024
    fallbacks = ["anthropic/claude-3-5-haiku-latest", "demo/echo"]

    [models."openai/llama3"]           # any OpenAI-compatible server
    base_url = "http://127.0.0.1:8080/v1"
    streaming = false                  # the server cannot stream; Sluice still does
    first_token_timeout = 120

    [models."openai/o4-mini"]
    max_tokens_field = "max_completion_tokens"   # or "max_tokens"

`max_tokens_field` (OpenAI Chat Completions models only) names the field the token
limit is sent in: api.openai.com has deprecated `max_tokens` and its reasoning models
refuse it, while many compatible servers know only `max_tokens`. Unset, it is
`max_completion_tokens` for api.openai.com and `max_tokens` for any other server.

    [models."openai/gpt-4o"]
    tools = ["current_time", "fetch_url"]   # server tools offered on every request
    max_rounds = 4                     # model calls per answer (tool rounds)
    max_tool_calls = 8                 # server tool calls per answer
    max_seconds = 90                   # wall time per answer; past it the answer ends
    max_tokens = 2048                  # output tokens per answer, all rounds together

A request may lower the four limits (`"limits"`), never raise them.

    [models."ollama/llama3.1"]
    context_window = 131072            # tokens the model reads and writes in all
    output_reserve = 2048              # of them, kept free for the answer

Unset, `context_window` and `output_reserve` come from the provider family's
defaults (services/context/budget.py); `output_reserve` falls back to `max_tokens`
first, as an answer may take that many.

A model's entry overrides the global settings for that model only. Models in the
file are listed by `GET /api/v1/models`.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0  # to open the connection
    first_token: float = 60.0  # from sending the request to the first visible output
    idle: float = 120.0  # longest silence between two chunks
    total: float = 600.0  # for the whole answer


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # per model, counting the first
    base_seconds: float = 0.5  # first backoff; doubles each time, with full jitter
    max_seconds: float = 8.0  # cap on one backoff; a longer Retry-After is not waited for


@dataclass(frozen=True)
class AnswerLimits:
    """How far one answer may go. Reaching a limit ends the answer cleanly: status
    `complete`, `finish_reason` `length`, and `limit` in `done` names the limit."""

    rounds: int = 8  # model calls per answer: the first and one after each tool round
    tool_calls: int = 16  # server tool calls per answer
    seconds: float | None = None  # wall time per answer (the total timeout is an error)
    tokens: int | None = None  # output tokens per answer (the model's `max_tokens`)


@dataclass(frozen=True)
class ModelSettings:
    """How to call one model."""

    id: str  # "provider/name"
    base_url: str | None = None  # None: the provider's global base URL
    api_key: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_tokens_field: str | None = None  # None: chosen by the server (see the docstring)
    streaming: bool = True
    fallbacks: tuple[str, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tools: tuple[str, ...] = ()  # server tools offered on every request to this model
    limits: AnswerLimits = field(default_factory=AnswerLimits)
    context_window: int | None = None  # tokens; None: the family's default
    output_reserve: int | None = None  # tokens kept for the answer; None: see above

    @property
    def answer_limits(self) -> AnswerLimits:
        """The limits of one answer, with `max_tokens` as its token ceiling."""
        return replace(self.limits, tokens=self.max_tokens)

    @property
    def provider(self) -> str:
        return self.id.partition("/")[0]

    @property
    def name(self) -> str:
        return self.id.partition("/")[2]

    @property
    def connection(self) -> tuple[str, str | None, str | None, float, float, str | None]:
        """What makes a distinct provider client: where, which key, which timeouts, and
        how the wire format is spoken there."""
        return (self.provider, self.base_url, self.api_key, self.timeouts.connect,
                self.timeouts.idle, self.max_tokens_field)


class CatalogError(ValueError):
    """The models file is not valid; the message says where."""


_TIMEOUT_KEYS = {"connect_timeout": "connect", "first_token_timeout": "first_token",
                 "idle_timeout": "idle", "total_timeout": "total"}
_RETRY_KEYS = {"retry_attempts": "attempts", "retry_base_seconds": "base_seconds",
               "retry_max_seconds": "max_seconds"}
# The limits of an answer, in the models file and a request's `limits`:
# key -> (AnswerLimits field, type, smallest value). `max_tokens` is also the model's
# own token limit (a plain key here).
LIMIT_KEYS = {"max_rounds": ("rounds", int, 1), "max_tool_calls": ("tool_calls", int, 0),
              "max_seconds": ("seconds", (int, float), 1), "max_tokens": ("tokens", int, 1)}
_LIMIT_KEYS = {key: LIMIT_KEYS[key] for key in ("max_rounds", "max_tool_calls", "max_seconds")}
_PLAIN_KEYS = {"base_url": str, "api_key": str, "temperature": (int, float),
               "max_tokens": int, "max_tokens_field": str, "streaming": bool,
               "context_window": int, "output_reserve": int}
_CHOICES = {"max_tokens_field": ("max_completion_tokens", "max_tokens")}


def global_settings(config: Mapping[str, Any]) -> ModelSettings:
    """The settings every model starts from, taken from the app config."""
    return ModelSettings(
        id="*/*",
        fallbacks=tuple(config["SLUICE_FALLBACK_MODELS"]),
        timeouts=Timeouts(connect=config["SLUICE_CONNECT_TIMEOUT"],
                          first_token=config["SLUICE_FIRST_TOKEN_TIMEOUT"],
                          idle=config["SLUICE_READ_TIMEOUT"],
                          total=config["SLUICE_TOTAL_TIMEOUT"]),
        retry=RetryPolicy(attempts=config["SLUICE_RETRY_ATTEMPTS"],
                          base_seconds=config["SLUICE_RETRY_BASE_SECONDS"],
                          max_seconds=config["SLUICE_RETRY_MAX_SECONDS"]),
    )


def _check(model_id: str, key: str, value: Any, kind: Any) -> Any:
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise CatalogError(f"models file: {model_id}.{key} has the wrong type ({value!r})")
    if kind in (int, (int, float)) and value < 0:
        raise CatalogError(f"models file: {model_id}.{key} must not be negative")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise CatalogError(f"models file: {model_id}.{key} must be one of "
                           + ", ".join(f'"{choice}"' for choice in _CHOICES[key]))
    return value


def _model_entry(model_id: str, entry: Mapping[str, Any], base: ModelSettings) -> ModelSettings:
    if model_id.count("/") < 1 or model_id.startswith("/") or model_id.endswith("/"):
        raise CatalogError(f"models file: {model_id!r} is not written provider/model")
    plain: dict[str, Any] = {}
    timeouts, retry, limits = {}, {}, {}
    for key, value in entry.items():
        if key in _PLAIN_KEYS:
            plain[key] = _check(model_id, key, value, _PLAIN_KEYS[key])
        elif key in _TIMEOUT_KEYS:
            timeouts[_TIMEOUT_KEYS[key]] = float(_check(model_id, key, value, (int, float)))
        elif key in _RETRY_KEYS:
            kind = int if key == "retry_attempts" else (int, float)
            retry[_RETRY_KEYS[key]] = _check(model_id, key, value, kind)
        elif key in _LIMIT_KEYS:
            name, kind, least = _LIMIT_KEYS[key]
            limits[name] = _check(model_id, key, value, kind)
            if limits[name] < least:
                raise CatalogError(f"models file: {model_id}.{key} must be at least {least}")
        elif key in ("fallbacks", "tools"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                what = "model ids" if key == "fallbacks" else "tool names"
                raise CatalogError(f"models file: {model_id}.{key} must be a list of {what}")
            plain[key] = tuple(value)
        else:
            known = sorted([*_PLAIN_KEYS, *_TIMEOUT_KEYS, *_RETRY_KEYS, *_LIMIT_KEYS,
                            "fallbacks", "tools"])
            raise CatalogError(f"models file: {model_id}.{key} is not a setting; "
                               f"known: {', '.join(known)}")
    _check_window(model_id, plain.get("context_window"), plain.get("output_reserve"))
    return replace(base, id=model_id, timeouts=replace(base.timeouts, **timeouts),
                   retry=replace(base.retry, **retry), limits=replace(base.limits, **limits),
                   **plain)


def _check_window(model_id: str, window: int | None, reserve: int | None) -> None:
    """A window must leave room for the prompt once the answer's share is kept."""
    if window is not None and window < 1:
        raise CatalogError(f"models file: {model_id}.context_window must be at least 1")
    if window is not None and reserve is not None and reserve >= window:
        raise CatalogError(f"models file: {model_id}.output_reserve must be less than "
                           f"its context_window ({window})")


def load_models_file(text: str, base: ModelSettings) -> dict[str, ModelSettings]:
    """The per-model settings in a models file's TOML text."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"models file is not valid TOML: {exc}") from None
    unknown = set(document) - {"models"}
    if unknown:
        raise CatalogError(f"models file: unknown table(s) {sorted(unknown)}; use [models.\"id\"]")
    models = document.get("models", {})
    return {model_id: _model_entry(model_id, entry, base) for model_id, entry in models.items()}


__all__ = ["LIMIT_KEYS", "AnswerLimits", "CatalogError", "ModelSettings", "RetryPolicy", "Timeouts",
           "global_settings", "load_models_file"]
