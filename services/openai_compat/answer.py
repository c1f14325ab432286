"""A run's events in OpenAI's terms: chunks while it streams, one `chat.completion` after.

Reasoning, where a provider streams it, goes out as `reasoning_content` (the field
DeepSeek, vLLM and others use; clients that do not know it ignore it). A content
filter is a finish reason, as on OpenAI; any other failure is an error. Token
counts a provider did not report are 0, since OpenAI's are always numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import error_object

FINISH_REASONS = ("stop", "length", "tool_calls")
# The end of an answer whose log could no longer be read.
LOST = {"code": "unavailable", "message": "Sluice lost the answer's event stream (Redis is "
        "not reachable); send the request again."}


@dataclass
class Answer:
    """What the run's events have said so far; `apply` each in order."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    done: dict[str, Any] | None = None

    def apply(self, event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Take one event; returns the `delta` it adds to the answer, if it adds one.
        (`start` and `status` events, retries and fallbacks, have no OpenAI counterpart.)"""
        if event_type == "delta":
            self.text.append(data["content"])
            return {"content": data["content"]}
        if event_type == "reasoning":
            self.reasoning.append(data["content"])
            return {"reasoning_content": data["content"]}
        if event_type == "tool_call" and not data.get("server"):  # Sluice runs those itself
            call = {"index": len(self.tool_calls), "id": data["id"], "type": "function",
                    "function": {"name": data["name"], "arguments": data["arguments"]}}
            self.tool_calls.append(call)
            return {"tool_calls": [call]}
        if event_type == "error":
            self.error = data
        elif event_type == "usage":
            self.usage = data
        elif event_type == "done":
            self.done = data
        return None

    @property
    def failure(self) -> dict[str, Any] | None:
        """Why the answer failed (`code`, `message`), or None if it ended as OpenAI's do."""
        if self.done is None:
            return LOST
        if self.error is not None:
            return None if self.error["code"] == "content_filter" else self.error
        if self.done["status"] != "complete":
            return {"code": self.done["status"], "message":
                    f"The answer ended before it was complete ({self.done['status']})."}
        return None

    @property
    def finish_reason(self) -> str:
        if self.error is not None and self.error["code"] == "content_filter":
            return "content_filter"
        reason = (self.done or {}).get("finish_reason")
        return reason if reason in FINISH_REASONS else "stop"

    def token_usage(self) -> dict[str, int]:
        prompt = self.usage.get("input_tokens") or 0
        completion = self.usage.get("output_tokens") or 0
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}


@dataclass(frozen=True)
class Envelope:
    """What every object of one completion repeats."""

    id: str  # chatcmpl-…
    created: int  # Unix seconds
    model: str  # as the client asked for it
    include_usage: bool = False  # stream_options.include_usage

    def _object(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": choices}

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """One `chat.completion.chunk` of the single choice."""
        chunk = self._object("chat.completion.chunk", [{
            "index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI: only the last chunk has it
        return chunk

    def ending(self, answer: Answer) -> list[dict[str, Any]]:
        """What follows the last delta: the finish reason, then the usage if asked for;
        or, for an answer that failed, the error (as OpenAI, in the place of a chunk)."""
        failure = answer.failure
        if failure is not None:  # a failure of the server or its provider: a 5xx's type
            return [error_object(500, failure["code"], failure["message"])]
        ending = [self.chunk({}, answer.finish_reason)]
        if self.include_usage:
            ending.append({**self._object("chat.completion.chunk", []),
                           "usage": answer.token_usage()})
        return ending

    def completion(self, answer: Answer) -> dict[str, Any]:
        """The whole answer as one `chat.completion` (non-streaming requests)."""
        message: dict[str, Any] = {"role": "assistant",
                                   "content": "".join(answer.text) or None, "refusal": None}
        if answer.tool_calls:
            message["tool_calls"] = [{key: call[key] for key in ("id", "type", "function")}
                                     for call in answer.tool_calls]
        elif message["content"] is None:
            message["content"] = ""
        if answer.reasoning:
            message["reasoning_content"] = "".join(answer.reasoning)
        return {**self._object("chat.completion", [{
            "index": 0, "message": message, "logprobs": None,
            "finish_reason": answer.finish_reason}]), "usage": answer.token_usage()}
