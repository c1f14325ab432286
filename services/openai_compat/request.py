"""A Chat Completions request body, checked and turned into a provider-neutral request.

What Sluice cannot honour is refused with OpenAI's 400 (naming the field), not
ignored: a client asking for two choices, log probabilities, stop sequences or a
JSON schema would otherwise get something it did not ask for and not know it.
Fields that only tune or label a request (`user`, `seed`, `top_p`, penalties,
`metadata`, `store`, `parallel_tool_calls`, …) and fields Sluice does not know are
ignored, as OpenAI-compatible servers commonly do.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError
from ..providers import ChatRequest, ToolSpec
from ..tools import ToolRegistry, parse_tools
from .errors import invalid, missing, wrong_type
from .messages import parse_messages


# Chat Completions has no tools named by string: every tool here is the client's.
_NO_SERVER_TOOLS = ToolRegistry()


@dataclass(frozen=True)
class CompletionRequest:
    model: str  # as the client wrote it: every chunk repeats it
    chat: ChatRequest
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the usage


def _text_only(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and value.get("type") == "text")


# field -> (does Sluice honour this value?, OpenAI's error code, why it is refused)
_REFUSED: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "n": (lambda v: v is None or v == 1, "unsupported_value",
          "Only n=1 is supported: Sluice returns one choice."),
    "logprobs": (lambda v: v is None or v is False, "unsupported_value",
                 "Log probabilities are not available through Sluice."),
    "top_logprobs": (lambda v: v is None or v == 0, "unsupported_value",
                     "Log probabilities are not available through Sluice."),
    "response_format": (_text_only, "unsupported_value",
                        "Only response_format {\"type\": \"text\"} is supported: Sluice cannot "
                        "hold every model to a JSON format."),
    "stop": (lambda v: not v, "unsupported_parameter", "Stop sequences are not supported."),
    "logit_bias": (lambda v: not v, "unsupported_parameter", "logit_bias is not supported."),
    "modalities": (lambda v: v is None or v == ["text"], "unsupported_value",
                   "Only text output is supported."),
    "audio": (lambda v: v is None, "unsupported_parameter", "Audio output is not supported."),
    "prediction": (lambda v: v is None, "unsupported_parameter",
                   "Predicted outputs are not supported."),
    "web_search_options": (lambda v: v is None, "unsupported_parameter",
                           "Web search is not supported."),
    "functions": (lambda v: v is None, "unsupported_parameter",
                  "The legacy 'functions' parameter is not supported; use 'tools'."),
    "function_call": (lambda v: v is None, "unsupported_parameter",
                      "The legacy 'function_call' parameter is not supported; use 'tool_choice'."),
}


def parse_request(body: dict[str, Any]) -> CompletionRequest:
    """The request, or a 400 naming the first field Sluice cannot serve as asked."""
    model = _model(body.get("model"))
    messages = parse_messages(body.get("messages"))
    for field, (honoured, code, reason) in _REFUSED.items():
        if not honoured(body.get(field)):
            raise invalid(field, reason, code)
    stream, include_usage = _streaming(body)
    chat = ChatRequest(model="", messages=messages, max_tokens=_max_tokens(body),
                       temperature=_temperature(body.get("temperature")), tools=_tools(body))
    return CompletionRequest(model, chat, stream, include_usage)


def _model(raw: Any) -> str:
    if raw is None:
        raise missing("model")
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
        raise wrong_type("model", "a model id such as demo/echo")
    return raw


def _streaming(body: dict[str, Any]) -> tuple[bool, bool]:
    """`stream`, and `stream_options.include_usage` (only allowed with it, as on OpenAI)."""
    stream, options = body.get("stream"), body.get("stream_options")
    if stream is not None and not isinstance(stream, bool):
        raise wrong_type("stream", "a boolean")
    if options is None:
        return bool(stream), False
    if not stream:
        raise invalid("stream_options",
                      "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
    if not isinstance(options, dict):
        raise wrong_type("stream_options", "an object")
    include_usage = options.get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise wrong_type("stream_options.include_usage", "a boolean")
    return True, bool(include_usage)


def _max_tokens(body: dict[str, Any]) -> int | None:
    """`max_completion_tokens`, or the older `max_tokens`."""
    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(field, f"'{field}' must be a whole number of tokens, at least 1.",
                      "invalid_type" if not isinstance(value, int) else "invalid_value")
    return value


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong_type("temperature", "a number")
    if not 0 <= value <= 2:
        raise invalid("temperature", "'temperature' must be between 0 and 2.")
    return float(value)


def _tools(body: dict[str, Any]) -> tuple[ToolSpec, ...]:
    """Function tools the caller runs; with `tool_choice: "none"` the model sees none."""
    raw, choice = body.get("tools"), body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise invalid("tool_choice", "Only tool_choice \"auto\" and \"none\" are supported: "
                      "Sluice cannot make every model call a tool.", "unsupported_value")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(tool, dict) for tool in raw):
        raise wrong_type("tools", "an array of tool objects")
    for index, tool in enumerate(raw):
        if tool.get("type") != "function":
            raise invalid(f"tools[{index}].type", "Only function tools are supported, not "
                          f"{tool.get('type')!r}.", "unsupported_value")
    try:
        specs, _ = parse_tools(raw, _NO_SERVER_TOOLS)  # only function objects reach here
    except ApiError as exc:
        raise invalid("tools", exc.message) from exc
    return () if choice == "none" else specs
