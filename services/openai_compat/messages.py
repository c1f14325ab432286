"""The `messages` of a Chat Completions request as provider-neutral `ChatMessage`s.

OpenAI's roles map onto Sluice's (`developer` is a system turn); content is a
string or a list of text parts, joined with newlines. Anything else (images, audio,
files, the legacy `function` role) is refused with a 400 that names the field,
never dropped: a model answering without half its input would mislead.
"""
from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..providers import ChatMessage, ToolCall
from .errors import invalid, missing, wrong_type

_ROLES = {"system": "system", "developer": "system", "user": "user",
          "assistant": "assistant", "tool": "tool"}


def parse_messages(raw: Any) -> tuple[ChatMessage, ...]:
    """Every turn of the conversation, in order; a 400 at the first one Sluice cannot pass on."""
    if raw is None:
        raise missing("messages")
    if not isinstance(raw, list):
        raise wrong_type("messages", "an array of messages")
    if not raw:
        raise invalid("messages", "'messages' must contain at least one message.")
    tool_names: dict[str, str] = {}  # tool call id -> function name, from earlier turns
    return tuple(_message(item, f"messages[{index}]", tool_names)
                 for index, item in enumerate(raw))


def _message(item: Any, where: str, tool_names: dict[str, str]) -> ChatMessage:
    if not isinstance(item, dict):
        raise wrong_type(where, "an object")
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise invalid(f"{where}.role", f"Invalid value for '{where}.role': {role!r}. Supported "
                      "values are: 'system', 'developer', 'user', 'assistant' and 'tool'.")
    if role == "assistant":
        return _assistant(item, where, tool_names)
    content = _content(item.get("content"), f"{where}.content")
    if role != "tool":
        return ChatMessage(_ROLES[role], content)
    call_id = item.get("tool_call_id")
    if not isinstance(call_id, str):
        raise missing(f"{where}.tool_call_id")
    return ChatMessage("tool", content, tool_call_id=call_id, name=tool_names.get(call_id))


def _assistant(item: dict[str, Any], where: str, tool_names: dict[str, str]) -> ChatMessage:
    """An earlier answer; its content may be null when it only called tools."""
    raw_content = item.get("content")
    content = "" if raw_content is None else _content(raw_content, f"{where}.content")
    raw_calls = item.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise wrong_type(f"{where}.tool_calls", "an array of tool calls")
    calls = tuple(_tool_call(call, f"{where}.tool_calls[{n}]") for n, call in enumerate(raw_calls))
    tool_names.update((call.id, call.name) for call in calls)
    return ChatMessage("assistant", content, tool_calls=calls)


def _tool_call(raw: Any, where: str) -> ToolCall:
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(function, dict) or raw.get("type", "function") != "function":
        raise invalid(where, f"'{where}' must be "
                      '{"id", "type": "function", "function": {"name", "arguments"}}.')
    fields = {"id": raw.get("id"), "function.name": function.get("name"),
              "function.arguments": function.get("arguments")}
    for name, value in fields.items():
        if not isinstance(value, str):
            raise wrong_type(f"{where}.{name}", "a string")
    return ToolCall(raw["id"], function["name"], function["arguments"])


def _content(raw: Any, where: str) -> str:
    """A turn's text: a string, or text parts joined with newlines."""
    if isinstance(raw, str):
        return raw
    if raw is None:
        raise missing(where)
    if not isinstance(raw, list):
        raise wrong_type(where, "a string or an array of content parts")
    return "\n".join(_text_part(part, f"{where}[{n}]") for n, part in enumerate(raw))


def _text_part(part: Any, where: str) -> str:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind != "text":
        raise ApiError(400, "unsupported_value",
                       f"Only text content parts are supported here, not {kind!r} "
                       f"({where}): Sluice passes text to its models.", param=f"{where}.type")
    text = part.get("text")
    if not isinstance(text, str):
        raise wrong_type(f"{where}.text", "a string")
    return text
