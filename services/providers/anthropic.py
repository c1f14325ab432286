"""Anthropic Messages (`POST {base}/v1/messages`), streaming and not.

The stream is SSE with a named event per step, each `data:` a JSON object whose
`type` repeats the name:

    message_start        message.usage.input_tokens (plus cache reads/writes)
    content_block_start  index, content_block {type: text | thinking | tool_use | ...}
    content_block_delta  index, delta {type: text_delta | thinking_delta |
                         input_json_delta (partial_json) | signature_delta}
    content_block_stop   index
    message_delta        delta.stop_reason, usage.output_tokens (cumulative)
    message_stop         the end marker; a body without it was cut off
    ping, error          keep-alive; {"error": {"type", "message"}} mid-stream

Blocks the server runs itself (`server_tool_use`, `web_search_tool_result`, …)
are its business: they are never passed on as tool calls for us to run.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests

from .base import (ChatMessage, ChatRequest, Completion, Finish, Provider, ProviderEvent,
                   ProviderStream, ReasoningDelta, TextDelta, ToolCall, Usage, new_call_id)
from .errors import (BadRequestError, ContentFilterError, IncompleteStreamError,
                     UpstreamStreamError, error_for_type, error_message, json_object)
from .http import HttpClient, shutdown_response
from ..sse import SSEDecoder

API_VERSION = "2023-06-01"
PATH = "/v1/messages"

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}


def finish_reason(stop_reason: str | None) -> str:
    """Anthropic's stop reason in Sluice's terms; a refusal withholds the answer."""
    if stop_reason == "refusal":
        raise ContentFilterError("anthropic declined to answer (stop_reason: refusal)")
    return STOP_REASONS.get(stop_reason or "", "stop")


def _input_tokens(usage: Any) -> int | None:
    """All prompt tokens: those read fresh plus those written to or read from the cache."""
    if not isinstance(usage, dict) or usage.get("input_tokens") is None:
        return None
    cached = ("cache_creation_input_tokens", "cache_read_input_tokens")
    return usage["input_tokens"] + sum(usage.get(key) or 0 for key in cached)


def _tool_input(call: ToolCall) -> dict[str, Any]:
    """The arguments of a past tool call as the object Anthropic wants back."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise BadRequestError(f"tool call {call.id} has arguments that are not a JSON object")
    return value


def _call_blocks(call: ToolCall, tool_names: frozenset[str]) -> list[dict[str, Any]]:
    """A past call as a tool_use block, or as text when the request does not offer its
    tool: Anthropic refuses tool_use and tool_result blocks without their tools."""
    if call.name in tool_names:
        return [{"type": "tool_use", "id": call.id, "name": call.name,
                 "input": _tool_input(call)}]
    return [_text(f"[called tool {call.name} with {call.arguments or '{}'}]")]


def _result_block(message: ChatMessage, name: str, tool_names: frozenset[str]) -> dict[str, Any]:
    if name in tool_names:
        return {"type": "tool_result", "tool_use_id": message.tool_call_id,
                "content": message.content}
    return _text(f"[result of {name or 'a tool'}: {message.content}]")


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _add_turn(wire: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Append a turn, merged into the last one if that has the same role: Anthropic
    alternates user and assistant, so parallel results (and a user message after
    results) share one turn, tool results first as the API requires."""
    blocks = [b for b in blocks if b["type"] != "text" or b["text"]]  # no empty text blocks
    if not blocks:
        return
    if wire and wire[-1]["role"] == role:
        blocks = wire[-1]["content"] + blocks
        wire.pop()
    blocks.sort(key=lambda block: block["type"] != "tool_result")  # stable: order kept
    wire.append({"role": role, "content": blocks})


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    """A turn of one text block written as a plain string, as most requests are."""
    content = entry["content"]
    if len(content) == 1 and content[0]["type"] == "text":
        return {"role": entry["role"], "content": content[0]["text"]}
    return entry


def wire_messages(messages: tuple[ChatMessage, ...],
                  tools: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The conversation without its system turns, in alternating turns; calls of tools
    not among `tools` (the names the request offers) and their results become text."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":  # results carry their call's name (pair_tool_turns)
            _add_turn(wire, "user", [_result_block(message, message.name or "", tools)])
        elif message.role == "assistant":
            _add_turn(wire, "assistant", [_text(message.content)] + [
                block for call in message.tool_calls for block in _call_blocks(call, tools)])
        elif message.role != "system":
            _add_turn(wire, "user", [_text(message.content)])
    return [_plain(entry) for entry in wire]


class _StreamState:
    """What the stream has said so far: the tool calls being built and the stop reason."""

    def __init__(self) -> None:
        self.tools: dict[int, tuple[str, str, list[str]]] = {}  # index → id, name, parts
        self.stop_reason: str | None = None

    def block_start(self, data: dict[str, Any]) -> Iterator[ProviderEvent]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            yield TextDelta(block["text"])
        elif block.get("type") == "thinking" and block.get("thinking"):
            yield ReasoningDelta(block["thinking"])
        elif block.get("type") == "tool_use":
            self.tools[data.get("index", 0)] = (block.get("id") or new_call_id(),
                                                block.get("name", ""), [])

    def block_delta(self, data: dict[str, Any]) -> Iterator[ProviderEvent]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            yield TextDelta(delta["text"])
        elif kind == "thinking_delta" and delta.get("thinking"):
            yield ReasoningDelta(delta["thinking"])
        elif kind == "input_json_delta" and data.get("index", 0) in self.tools:
            # Only our own tool_use blocks; a server_tool_use block's input is not ours.
            self.tools[data.get("index", 0)][2].append(delta.get("partial_json") or "")

    def block_stop(self, data: dict[str, Any]) -> Iterator[ProviderEvent]:
        tool = self.tools.pop(data.get("index", 0), None)
        if tool is not None:
            call_id, name, parts = tool
            yield ToolCall(call_id, name, "".join(parts) or "{}")

    def message_delta(self, data: dict[str, Any]) -> Iterator[ProviderEvent]:
        self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
        output_tokens = (data.get("usage") or {}).get("output_tokens")
        if output_tokens is not None:
            yield Usage(None, output_tokens)


def _raise_if_error(body: dict[str, Any]) -> None:
    """An `{"type": "error", "error": {...}}` object becomes the exception it names."""
    if body.get("type") == "error":
        error = body["error"] if isinstance(body.get("error"), dict) else {}
        raise error_for_type(error.get("type"), error_message(body, "no message given"),
                             "anthropic")


def _parse(data: str) -> dict[str, Any]:
    """One event's JSON object; an error event raises."""
    event = json_object(data, "anthropic", "an event")
    _raise_if_error(event)
    return event


class AnthropicProvider(Provider):
    name = "anthropic"

    def __init__(self, base_url: str, api_key: str | None, session: requests.Session,
                 connect_timeout: float = 10.0, read_timeout: float = 120.0,
                 default_max_tokens: int = 4096) -> None:
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        self.http = HttpClient(self.name, base_url, headers, session,
                               connect_timeout, read_timeout)
        self.default_max_tokens = default_max_tokens

    def check_model(self, model: str) -> None:
        """Accept any name: Anthropic itself says which models exist."""

    def models(self) -> list[dict[str, Any]]:
        """None known without a network call."""
        return []

    def _payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": wire_messages(request.messages,
                                      frozenset(tool.name for tool in request.tools)),
            "max_tokens": request.max_tokens or self.default_max_tokens,
            "stream": stream,
        }
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        if system:
            payload["system"] = system
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.tools:
            payload["tools"] = [{"name": t.name, "description": t.description,
                                 "input_schema": t.parameters} for t in request.tools]
        return payload

    def complete(self, request: ChatRequest) -> Completion:
        """Answer in one call: text, thinking and tool calls from the content blocks."""
        body = self.http.post_json(PATH, self._payload(request, False))
        _raise_if_error(body)
        blocks = [b for b in body.get("content") or () if isinstance(b, dict)]
        usage = body.get("usage") or {}
        return Completion(
            text="".join(b.get("text", "") for b in blocks if b.get("type") == "text"),
            reasoning="".join(b.get("thinking", "") for b in blocks
                              if b.get("type") == "thinking"),
            tool_calls=tuple(ToolCall(b.get("id") or new_call_id(), b.get("name", ""),
                                      json.dumps(b.get("input") or {}, ensure_ascii=False))
                             for b in blocks if b.get("type") == "tool_use"),
            finish_reason=finish_reason(body.get("stop_reason")),
            usage=Usage(_input_tokens(usage), usage.get("output_tokens")),
        )

    def stream(self, request: ChatRequest) -> ProviderStream:
        """Start a streaming call; the events come as the model writes them."""
        response = self.http.post(PATH, self._payload(request, True), True)
        return ProviderStream(self._events(response), response.close,
                              interrupt=lambda: shutdown_response(response))

    def _events(self, response: requests.Response) -> Iterator[ProviderEvent]:
        state = _StreamState()
        handlers = {"content_block_start": state.block_start,
                    "content_block_delta": state.block_delta,
                    "content_block_stop": state.block_stop,
                    "message_delta": state.message_delta}
        try:
            for sse in SSEDecoder(self.http.chunks(response)):
                event = _parse(sse.data)
                kind = event.get("type") or sse.event
                if kind == "message_start":
                    input_tokens = _input_tokens((event.get("message") or {}).get("usage"))
                    if input_tokens is not None:
                        yield Usage(input_tokens, None)
                elif kind == "message_stop":
                    self.http.release(response)
                    yield Finish(finish_reason(state.stop_reason))
                    return
                elif kind in handlers:
                    yield from handlers[kind](event)
        except UnicodeDecodeError as exc:
            raise UpstreamStreamError("anthropic sent a stream that is not UTF-8") from exc
        finally:
            response.close()
        raise IncompleteStreamError(
            "the anthropic stream ended before message_stop: the answer was cut off")
