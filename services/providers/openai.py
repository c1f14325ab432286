"""OpenAI Chat Completions (`POST {base}/chat/completions`), streaming and not.

Works for any OpenAI-compatible server. The stream is SSE: `data:` chunks of
`chat.completion.chunk` JSON, then `data: [DONE]`. With
`stream_options.include_usage` the last chunk before `[DONE]` carries `usage` and
no choices. What real servers also send, and how it is read:

- tool calls arrive in pieces keyed by `index`; the id and name may come in the
  first piece, with the role, or later; arguments are concatenated;
- a first chunk with empty `choices` (Azure's prompt filter results), choices
  without `delta`, blank `data:` lines and `: keep-alive` comments are skipped;
- reasoning comes as `delta.reasoning_content` (DeepSeek, vLLM) or `delta.reasoning`;
- `{"error": …}` inside the stream is an error even if `[DONE]` follows (vLLM);
- `finish_reason: "content_filter"` means the answer was withheld;
- a body that ends without `[DONE]` was cut off.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from .base import (ChatMessage, ChatRequest, Completion, Finish, Provider, ProviderEvent,
                   ProviderStream, ReasoningDelta, TextDelta, ToolCall, Usage, new_call_id)
from .errors import (ContentFilterError, IncompleteStreamError, UpstreamStreamError,
                     error_message, json_object)
from .http import HttpClient, shutdown_response
from ..sse import SSEDecoder

OPENAI_HOST = "api.openai.com"
FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                  "function_call": "tool_calls"}


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(raw.get("prompt_tokens"), raw.get("completion_tokens"))


def _finish(reason: str | None) -> Finish:
    if reason == "content_filter":
        raise ContentFilterError("openai withheld the rest of the answer (content filter)")
    return Finish(FINISH_REASONS.get(reason or "stop", "stop"))


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls]
    return wire


def default_max_tokens_field(base_url: str) -> str:
    """Where the token limit goes when the models file does not say: OpenAI itself has
    deprecated `max_tokens` (its reasoning models refuse it); compatible servers
    (vLLM, llama.cpp, older proxies) often know only `max_tokens`."""
    host = urlsplit(base_url).hostname or ""
    return "max_completion_tokens" if host == OPENAI_HOST else "max_tokens"


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class _ToolCallAssembler:
    """Joins streamed tool-call pieces by `index`; calls are complete at the finish."""

    def __init__(self) -> None:
        self._calls: dict[int, _PendingCall] = {}

    def add(self, piece: dict[str, Any]) -> None:
        call = self._calls.setdefault(piece.get("index", len(self._calls)), _PendingCall())
        function = piece.get("function") or {}
        call.id = piece.get("id") or call.id
        call.name = function.get("name") or call.name
        call.arguments += function.get("arguments") or ""

    def complete(self) -> list[ToolCall]:
        return [ToolCall(call.id or new_call_id(), call.name, call.arguments or "{}")
                for _, call in sorted(self._calls.items())]


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(self, base_url: str, api_key: str | None, session: requests.Session,
                 connect_timeout: float = 10.0, read_timeout: float = 120.0,
                 max_tokens_field: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HttpClient(self.name, base_url, headers, session,
                               connect_timeout, read_timeout)
        self.max_tokens_field = max_tokens_field or default_max_tokens_field(base_url)

    def embed_batch(self, model: str, texts: list[str]) -> list[Any]:
        """`POST /embeddings`; the answer's `data` items carry an `index`, put back in order."""
        body = self.http.post_json("/embeddings", {"model": model, "input": texts})
        data = body.get("data")
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise UpstreamStreamError("openai answered embeddings without a `data` list")
        ordered = sorted(data, key=lambda d: d.get("index") if isinstance(
            d.get("index"), int) else 0)
        return [item.get("embedding") for item in ordered]

    def _payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [_wire_message(m) for m in request.messages],
            "stream": stream,
        }
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if request.tools:
            payload["tools"] = [
                {"type": "function", "function": {"name": t.name, "description": t.description,
                                                  "parameters": t.parameters}}
                for t in request.tools]
        if request.max_tokens is not None:
            payload[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        return payload

    def complete(self, request: ChatRequest) -> Completion:
        body = self.http.post_json("/chat/completions", self._payload(request, False))
        if "error" in body:
            raise UpstreamStreamError(error_message(body, "openai reported an error"))
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        calls = _ToolCallAssembler()
        for index, piece in enumerate(message.get("tool_calls") or ()):
            calls.add({"index": index, **piece})
        return Completion(
            text=message.get("content") or "",
            reasoning=message.get("reasoning_content") or message.get("reasoning") or "",
            finish_reason=_finish(choice.get("finish_reason")).reason,
            usage=_usage(body.get("usage")) or Usage(None, None),
            tool_calls=tuple(calls.complete()),
        )

    def stream(self, request: ChatRequest) -> ProviderStream:
        response = self.http.post("/chat/completions", self._payload(request, True), True)
        return ProviderStream(self._events(response), response.close,
                              interrupt=lambda: shutdown_response(response))

    def _events(self, response: requests.Response) -> Iterator[ProviderEvent]:
        finish_reason: str | None = None
        calls = _ToolCallAssembler()
        try:
            for sse in SSEDecoder(self.http.chunks(response)):
                if not sse.data.strip():  # some servers send blank `data:` lines
                    continue
                if sse.data == "[DONE]":
                    self.http.release(response)
                    yield from calls.complete()
                    yield _finish(finish_reason)
                    return
                chunk = self._parse(sse.data)
                for choice in chunk.get("choices") or ():
                    yield from self._choice_events(choice, calls)
                    finish_reason = choice.get("finish_reason") or finish_reason
                usage = _usage(chunk.get("usage"))
                if usage is not None:
                    yield usage
        except UnicodeDecodeError as exc:
            raise UpstreamStreamError("openai sent a stream that is not UTF-8") from exc
        finally:
            response.close()
        raise IncompleteStreamError("the openai stream ended before [DONE]: the answer was cut off")

    @staticmethod
    def _choice_events(choice: dict[str, Any],
                       calls: _ToolCallAssembler) -> Iterator[ProviderEvent]:
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            yield ReasoningDelta(reasoning)
        if delta.get("content"):
            yield TextDelta(delta["content"])
        for piece in delta.get("tool_calls") or ():
            calls.add(piece)

    @staticmethod
    def _parse(data: str) -> dict[str, Any]:
        chunk = json_object(data, "openai", "a chunk")
        if "error" in chunk:
            raise UpstreamStreamError("openai reported an error mid-stream: "
                                      + error_message(chunk, "no message given"))
        return chunk
