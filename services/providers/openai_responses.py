"""OpenAI Responses API (`POST {base}/responses`), streaming and not.

The request puts system text in `instructions` and the turns in `input`: plain
`{"role", "content"}` items, plus `function_call` and `function_call_output`
items for tool use. The stream is SSE of typed events, each `event: <type>` with
`data: {"type": <type>, "sequence_number": n, ...}`. Text comes in
`response.output_text.delta`, reasoning in `response.reasoning_summary_text.delta`
(or `response.reasoning_text.delta`). A function call starts with
`response.output_item.added` (its `call_id` and `name`), its arguments come in
`response.function_call_arguments.delta` events keyed by the item id, and it is
complete at `response.output_item.done`. There is no `[DONE]`: the stream ends
with `response.completed`, `response.incomplete` or `response.failed`, whose
`response` carries `usage`; a body that ends without one was cut off. An `error`
event may come at any point, with `code` and `message` at the top level as
documented, or nested under `error` as OpenAI also sends them. A model that
declines writes a `refusal` content part instead of `output_text`
(`response.refusal.delta` / `.done`): that is a withheld answer, as Anthropic's
`stop_reason: refusal` is, not an empty one.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from .base import (ChatMessage, ChatRequest, Completion, Finish, Provider, ProviderEvent,
                   ProviderStream, ReasoningDelta, TextDelta, ToolCall, ToolSpec, Usage,
                   new_call_id)
from .errors import (ContentFilterError, IncompleteStreamError, ProviderError,
                     ProviderStatusError, UpstreamStreamError, error_for_type, json_object)
from .http import HttpClient, shutdown_response
from ..sse import SSEDecoder

PROVIDER = "openai-responses"
REASONING_DELTAS = {"response.reasoning_summary_text.delta": "summary_index",
                    "response.reasoning_text.delta": "content_index"}
TERMINAL_EVENTS = {"response.completed", "response.incomplete", "response.failed"}
PARAGRAPH = "\n\n"  # between reasoning summary parts, which are separate paragraphs


def _usage(response: dict[str, Any]) -> Usage:
    raw = response.get("usage")
    if not isinstance(raw, dict):
        return Usage(None, None)
    return Usage(raw.get("input_tokens"), raw.get("output_tokens"))


def _reported_error(report: Any) -> ProviderError:
    """The exception for an error object: an `error` event or a failed response's `error`."""
    if not isinstance(report, dict):
        return UpstreamStreamError(f"{PROVIDER} reported an error without details")
    nested = report.get("error")
    details = nested if isinstance(nested, dict) else report
    message = str(details.get("message") or "no message given")
    error = error_for_type(details.get("code"), message, PROVIDER)
    if details is nested and not isinstance(error, ProviderStatusError) and details.get("type"):
        # The nested form also has a `type` ("server_error", "insufficient_quota")
        # that is known when its `code` is null or too specific to map.
        error = error_for_type(details["type"], message, PROVIDER)
    return error


def _finish_reason(status: str, response: dict[str, Any], called_tools: bool) -> str:
    """The normalised finish reason of an ended response; raises if it failed or was withheld."""
    if status == "failed":
        raise _reported_error(response.get("error"))
    if status == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        if reason == "content_filter":
            raise ContentFilterError(f"{PROVIDER} withheld the rest of the answer")
        return "length"  # max_output_tokens, the only other documented reason: cut short
    return "tool_calls" if called_tools else "stop"


def _refused(text: str) -> ContentFilterError:
    """A refusal content part: the answer is withheld, and the refusal says why."""
    return ContentFilterError(f"{PROVIDER} declined to answer: {text}" if text
                              else f"{PROVIDER} declined to answer")


def _input_items(message: ChatMessage) -> list[dict[str, Any]]:
    """One history turn as Responses `input` items."""
    if message.role == "tool":
        return [{"type": "function_call_output", "call_id": message.tool_call_id,
                 "output": message.content}]
    items: list[dict[str, Any]] = []
    if message.content or not message.tool_calls:
        items.append({"role": message.role, "content": message.content})
    items.extend({"type": "function_call", "call_id": call.id, "name": call.name,
                  "arguments": call.arguments} for call in message.tool_calls)
    return items


def _tool(spec: ToolSpec) -> dict[str, Any]:
    # Responses turns an omitted `strict` into strict mode where it can, which makes
    # every parameter required; ToolSpec means best effort, as in Chat Completions.
    return {"type": "function", "name": spec.name, "description": spec.description,
            "parameters": spec.parameters, "strict": False}


def _read_output(output: Any) -> tuple[str, str, tuple[ToolCall, ...]]:
    """The text, reasoning and tool calls in a whole response's `output` items; raises
    `ContentFilterError` if the message is a refusal."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in output if isinstance(output, list) else ():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            parts = item.get("content") or ()
            refusals = [part for part in parts if part.get("type") == "refusal"]
            if refusals:
                raise _refused("".join(part.get("refusal") or "" for part in refusals))
            texts += [part.get("text") or "" for part in parts
                      if part.get("type") == "output_text"]
        elif kind == "reasoning":
            parts = [*(item.get("summary") or ()), *(item.get("content") or ())]
            reasoning += [part.get("text") or "" for part in parts]
        elif kind == "function_call":
            calls.append(ToolCall(item.get("call_id") or new_call_id(), item.get("name") or "",
                                  item.get("arguments") or "{}"))
    return "".join(texts), PARAGRAPH.join(reasoning), tuple(calls)


class _StreamState:
    """What one stream has said so far: its open function calls and reasoning part."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, str]] = {}  # item id -> call_id, name, arguments
        self.called_tools = False
        self.reasoning_part: tuple[Any, ...] | None = None
        self.refusal: list[str] = []
        self.ended = False

    def read(self, event: dict[str, Any]) -> Iterator[ProviderEvent]:
        """The provider events for one wire event; raises for errors and failures."""
        kind = event.get("type")
        if kind == "response.output_text.delta" and event.get("delta"):
            yield TextDelta(event["delta"])
        elif kind == "response.refusal.delta":
            self.refusal.append(event.get("delta") or "")
        elif kind == "response.refusal.done":
            raise _refused(event.get("refusal") or "".join(self.refusal))
        elif kind in REASONING_DELTAS and event.get("delta"):
            yield self._reasoning(event, event.get(REASONING_DELTAS[kind]))
        elif kind == "response.output_item.added":
            self._open_call(event.get("item"))
        elif kind == "response.function_call_arguments.delta":
            call = self.calls.get(event.get("item_id") or "")
            if call is not None:
                call["arguments"] += event.get("delta") or ""
        elif kind == "response.output_item.done":
            yield from self._close_call(event.get("item"))
        elif kind in TERMINAL_EVENTS:
            yield from self._end(kind, event.get("response") or {})
        elif kind == "error":
            raise _reported_error(event)

    def _reasoning(self, event: dict[str, Any], part_index: Any) -> ReasoningDelta:
        part = (event.get("type"), event.get("item_id"), part_index)
        starts_paragraph = self.reasoning_part is not None and part != self.reasoning_part
        self.reasoning_part = part
        return ReasoningDelta(PARAGRAPH + event["delta"] if starts_paragraph else event["delta"])

    def _open_call(self, item: Any) -> None:
        if isinstance(item, dict) and item.get("type") == "function_call":
            self.calls[item.get("id") or ""] = {
                "call_id": item.get("call_id") or "", "name": item.get("name") or "",
                "arguments": item.get("arguments") or ""}

    def _close_call(self, item: Any) -> Iterator[ToolCall]:
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return
        call = self.calls.pop(item.get("id") or "", None)
        if call is None:  # never announced: the finished item has all we need
            call = {"call_id": item.get("call_id") or "", "name": item.get("name") or "",
                    "arguments": ""}
        self.called_tools = True
        yield ToolCall(call["call_id"] or new_call_id(), call["name"],
                       call["arguments"] or item.get("arguments") or "{}")

    def _end(self, kind: str, response: dict[str, Any]) -> Iterator[ProviderEvent]:
        status = kind.removeprefix("response.")
        if self.refusal:  # deltas without their `done`: still a refusal
            raise _refused("".join(self.refusal))
        if status != "failed":
            yield _usage(response)
        reason = _finish_reason(status, response, self.called_tools)
        self.ended = True
        yield Finish(reason)


class OpenAIResponsesProvider(Provider):
    name = PROVIDER

    def __init__(self, base_url: str, api_key: str | None, session: requests.Session,
                 connect_timeout: float = 10.0, read_timeout: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HttpClient(self.name, base_url, headers, session,
                               connect_timeout, read_timeout)

    def _payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        system = [m.content for m in request.messages if m.role == "system"]
        payload: dict[str, Any] = {
            "model": request.model,
            "input": [item for m in request.messages if m.role != "system"
                      for item in _input_items(m)],
            "stream": stream,
            "store": False,  # Sluice keeps the history; nothing to fetch back later
        }
        if system:
            payload["instructions"] = PARAGRAPH.join(system)
        if request.tools:
            payload["tools"] = [_tool(spec) for spec in request.tools]
        if request.max_tokens is not None:
            payload["max_output_tokens"] = request.max_tokens
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        return payload

    def complete(self, request: ChatRequest) -> Completion:
        """Answer `request` with one non-streaming call, read from its `output` items."""
        body = self.http.post_json("/responses", self._payload(request, False))
        if body.get("error"):
            raise _reported_error(body["error"])
        text, reasoning, calls = _read_output(body.get("output"))
        reason = _finish_reason(body.get("status") or "completed", body, bool(calls))
        return Completion(text=text, finish_reason=reason, usage=_usage(body),
                          reasoning=reasoning, tool_calls=calls)

    def stream(self, request: ChatRequest) -> ProviderStream:
        """Start a streaming call; its events end with `Usage` and `Finish`."""
        response = self.http.post("/responses", self._payload(request, True), True)
        return ProviderStream(self._events(response), response.close,
                              interrupt=lambda: shutdown_response(response))

    def _events(self, response: requests.Response) -> Iterator[ProviderEvent]:
        state = _StreamState()
        try:
            for sse in SSEDecoder(self.http.chunks(response)):
                yield from state.read(self._parse(sse.data))
                if state.ended:
                    self.http.release(response)
                    return
        except UnicodeDecodeError as exc:
            raise UpstreamStreamError(f"{PROVIDER} sent a stream that is not UTF-8") from exc
        finally:
            response.close()
        raise IncompleteStreamError(
            f"the {PROVIDER} stream ended before response.completed: the answer was cut off")

    @staticmethod
    def _parse(data: str) -> dict[str, Any]:
        return json_object(data, PROVIDER, "an event")
