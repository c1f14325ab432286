"""Ollama's native chat API (`POST {host}/api/chat`), streaming and not.

The stream is NDJSON: one JSON object per line, each carrying a piece of
`message` — `content` (answer text), `thinking` (reasoning of a thinking model)
or `tool_calls`, which arrive whole, with `arguments` as a JSON object:

  {"model":"llama3.2","created_at":"…","message":{"role":"assistant","content":"Hi"},"done":false}

The last line has `"done": true`, a `done_reason` ("stop", "length", or "load" /
"unload" for calls without messages) and the counts `prompt_eval_count` and
`eval_count` next to durations in nanoseconds. A failure mid-stream is a line
`{"error": "…"}`. A body that ends before a `done` line was cut off. With
`"stream": false` the answer is that same final object alone, with the whole message.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests

from .base import (ChatMessage, ChatRequest, Completion, Finish, Provider, ProviderEvent,
                   ProviderStream, ReasoningDelta, TextDelta, ToolCall, ToolSpec, Usage,
                   new_call_id)
from .errors import IncompleteStreamError, UpstreamStreamError, error_message, json_object
from .http import HttpClient, shutdown_response

CHAT_PATH = "/api/chat"
EMBED_PATH = "/api/embed"
FINISH_REASONS = {"stop": "stop", "length": "length"}  # "load", "unload", … mean stop


class LineSplitter:
    """Cuts a byte stream into lines, decoding each only once it is whole.

    A chunk may end anywhere, even inside a multi-byte UTF-8 character, so bytes
    wait here until their newline arrives. CRs and blank lines are dropped.
    """

    def __init__(self) -> None:
        self._partial = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        """The non-blank lines that `chunk` completes; raises `UnicodeDecodeError`."""
        *endings, rest = chunk.split(b"\n")
        lines = []
        for ending in endings:
            self._partial += ending
            lines.append(self._take())
        self._partial += rest
        return [line for line in lines if line]

    def finish(self) -> str:
        """What came after the last newline: a last line without its newline, or ""."""
        return self._take()

    def _take(self) -> str:
        line = bytes(self._partial).strip().decode("utf-8")
        self._partial.clear()
        return line


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    """One of Ollama's whole tool calls; Ollama sends no id, so the call gets a new one."""
    function = raw.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
    return ToolCall(id=raw.get("id") or new_call_id(),
                    name=function.get("name") or "", arguments=arguments)


def _object_events(chunk: dict[str, Any], calls: list[ToolCall]) -> Iterator[ProviderEvent]:
    """The events one object of the answer carries; `calls` gathers tool calls across lines."""
    if "error" in chunk:
        raise UpstreamStreamError("ollama reported an error: "
                                  + error_message(chunk, "no message given"))
    message = chunk.get("message") or {}
    if message.get("thinking"):
        yield ReasoningDelta(message["thinking"])
    if message.get("content"):
        yield TextDelta(message["content"])
    for raw in message.get("tool_calls") or ():
        call = _tool_call(raw)
        calls.append(call)
        yield call
    if chunk.get("done"):
        yield Usage(chunk.get("prompt_eval_count"), chunk.get("eval_count"))
        reason = FINISH_REASONS.get(chunk.get("done_reason") or "stop", "stop")
        yield Finish("tool_calls" if calls and reason == "stop" else reason)


def _parse(line: str) -> dict[str, Any]:
    return json_object(line, "ollama", "a line")


def _arguments_object(arguments: str) -> dict[str, Any]:
    """A call's arguments as the JSON object Ollama expects back in the history."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    # Ollama rejects the whole request if arguments is not an object; a call whose
    # arguments a model garbled is better replayed empty than not at all.
    return parsed if isinstance(parsed, dict) else {}


def _tool(tool: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": tool.name, "description": tool.description, "parameters": tool.parameters}}


def _messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """The history in Ollama's shape: tool calls with object arguments, tool results named."""
    names_by_call_id: dict[str, str] = {}
    wire: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = [
                {"function": {"name": call.name, "arguments": _arguments_object(call.arguments)}}
                for call in message.tool_calls]
            names_by_call_id.update((call.id, call.name) for call in message.tool_calls)
        if message.role == "tool":
            tool_name = message.name or names_by_call_id.get(message.tool_call_id or "")
            if tool_name:
                entry["tool_name"] = tool_name
        wire.append(entry)
    return wire


class OllamaProvider(Provider):
    name = "ollama"

    def __init__(self, base_url: str, session: requests.Session,
                 connect_timeout: float = 10.0, read_timeout: float = 120.0,
                 api_key: str | None = None) -> None:
        # A bare Ollama needs no key; one behind an authenticating proxy does.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HttpClient(self.name, base_url, headers, session,
                               connect_timeout, read_timeout)

    def embed_batch(self, model: str, texts: list[str]) -> list[Any]:
        """`POST /api/embed` (Ollama 0.3 and later): `embeddings`, one per input, in order."""
        body = self.http.post_json(EMBED_PATH, {"model": model, "input": texts})
        if "error" in body:
            raise UpstreamStreamError("ollama reported an error: "
                                      + error_message(body, "no message given"))
        embeddings = body.get("embeddings")
        if not isinstance(embeddings, list):
            raise UpstreamStreamError("ollama answered without `embeddings`")
        return embeddings

    def _payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": request.model,
                                   "messages": _messages(request.messages), "stream": stream}
        if request.tools:
            payload["tools"] = [_tool(tool) for tool in request.tools]
        options = {"temperature": request.temperature, "num_predict": request.max_tokens}
        options = {key: value for key, value in options.items() if value is not None}
        if options:
            payload["options"] = options
        return payload

    def complete(self, request: ChatRequest) -> Completion:
        """Ask for the whole answer as one JSON object (`"stream": false`)."""
        body = self.http.post_json(CHAT_PATH, self._payload(request, False))
        events = list(_object_events(body, []))
        finish = next((e for e in events if isinstance(e, Finish)), None)
        if finish is None:
            raise IncompleteStreamError("ollama answered without \"done\": the answer is partial")
        return Completion(
            text="".join(e.text for e in events if isinstance(e, TextDelta)),
            reasoning="".join(e.text for e in events if isinstance(e, ReasoningDelta)),
            tool_calls=tuple(e for e in events if isinstance(e, ToolCall)),
            usage=next(e for e in events if isinstance(e, Usage)),
            finish_reason=finish.reason)

    def stream(self, request: ChatRequest) -> ProviderStream:
        """Start a streaming chat; the events arrive as Ollama writes its lines."""
        response = self.http.post(CHAT_PATH, self._payload(request, True), True)
        return ProviderStream(self._events(response), response.close,
                              interrupt=lambda: shutdown_response(response))

    def _events(self, response: requests.Response) -> Iterator[ProviderEvent]:
        calls: list[ToolCall] = []
        try:
            for chunk in self._objects(response):
                for event in _object_events(chunk, calls):
                    yield event
                    if isinstance(event, Finish):
                        self.http.release(response)
                        return
        finally:
            response.close()
        raise IncompleteStreamError("the ollama stream ended before \"done\": "
                                    "the answer was cut off")

    def _objects(self, response: requests.Response) -> Iterator[dict[str, Any]]:
        """The body's JSON objects, one per line, as each line completes."""
        splitter = LineSplitter()
        try:
            for data in self.http.chunks(response):
                for line in splitter.feed(data):
                    yield _parse(line)
        except UnicodeDecodeError as exc:
            raise UpstreamStreamError("ollama sent a stream that is not UTF-8") from exc
        try:
            last = json.loads(splitter.finish() or "null")
        except ValueError:  # also a character cut in half
            last = None  # cut off mid-line: the missing "done" line reports it
        if isinstance(last, dict):
            yield last
