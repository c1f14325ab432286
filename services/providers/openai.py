"""OpenAI Chat Completions (`POST {base}/chat/completions`), streaming and not.

Works for any OpenAI-compatible server. The stream is SSE: `data:` chunks of
`chat.completion.chunk` JSON, then `data: [DONE]`. With
`stream_options.include_usage` the last chunk before `[DONE]` carries `usage` and
no choices. A body that ends without `[DONE]` was cut off and is an error.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests

from .base import (ChatRequest, Completion, Finish, Provider, ProviderEvent, ProviderStream,
                   ReasoningDelta, TextDelta, Usage)
from .errors import IncompleteStreamError, UpstreamStreamError, error_message
from .http import HttpClient, shutdown_response
from ..sse import SSEDecoder

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "error",
}


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(raw.get("prompt_tokens"), raw.get("completion_tokens"))


class OpenAIProvider(Provider):
    name = "openai"

    def __init__(self, base_url: str, api_key: str | None, session: requests.Session,
                 connect_timeout: float = 10.0, read_timeout: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HttpClient(self.name, base_url, headers, session,
                               connect_timeout, read_timeout)

    def _payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": stream,
        }
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if request.max_tokens is not None:
            payload["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        return payload

    def complete(self, request: ChatRequest) -> Completion:
        response = self.http.post("/chat/completions", self._payload(request, False), False)
        try:
            body = response.json()
        except ValueError as exc:
            raise UpstreamStreamError("openai answered with a body that is not JSON") from exc
        if "error" in body:
            raise UpstreamStreamError(error_message(body, "openai reported an error"))
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        return Completion(
            text=message.get("content") or "",
            reasoning=message.get("reasoning_content") or "",
            finish_reason=FINISH_REASONS.get(choice.get("finish_reason") or "stop", "stop"),
            usage=_usage(body.get("usage")) or Usage(None, None),
        )

    def stream(self, request: ChatRequest) -> ProviderStream:
        response = self.http.post("/chat/completions", self._payload(request, True), True)
        return ProviderStream(self._events(response), response.close,
                              interrupt=lambda: shutdown_response(response))

    def _events(self, response: requests.Response) -> Iterator[ProviderEvent]:
        finish_reason: str | None = None
        decoder = SSEDecoder(self.http.chunks(response))
        try:
            for sse in decoder:
                if not sse.data.strip():  # some servers send blank `data:` lines
                    continue
                if sse.data == "[DONE]":
                    yield Finish(finish_reason or "stop")
                    return
                chunk = self._parse(sse.data)
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("reasoning_content"):
                        yield ReasoningDelta(delta["reasoning_content"])
                    if delta.get("content"):
                        yield TextDelta(delta["content"])
                    if choice.get("finish_reason"):
                        finish_reason = FINISH_REASONS.get(choice["finish_reason"], "stop")
                usage = _usage(chunk.get("usage"))
                if usage is not None:
                    yield usage
        except UnicodeDecodeError as exc:
            raise UpstreamStreamError("openai sent a stream that is not UTF-8") from exc
        finally:
            response.close()
        raise IncompleteStreamError("the openai stream ended before [DONE]: the answer was cut off")

    @staticmethod
    def _parse(data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise UpstreamStreamError(f"openai sent a chunk that is not JSON: {data[:100]!r}") from exc
        if not isinstance(chunk, dict):
            raise UpstreamStreamError(f"openai sent an unexpected chunk: {data[:100]!r}")
        if "error" in chunk:
            raise UpstreamStreamError("openai reported an error mid-stream: "
                                      + error_message(chunk, "no message given"))
        return chunk
