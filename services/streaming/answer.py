"""What a run has produced so far, and how it ends: its text, and the `done` it sends.

`Answer` accumulates the provider's events (text, reasoning, tool calls, usage) and
times the answer; `Outcome` is how it ended. An answer that is the input of a
further step (an operation's JSON result) gets that step's `StepResult` too.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..providers.base import Usage
from ..storage.safe_text import storable


@dataclass(frozen=True)
class Outcome:
    status: str  # complete | cancelled | error | interrupted
    finish_reason: str
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class StepResult:
    """What a result step made of a complete answer: a result, or an error saying why not."""

    result: Any = None
    repaired: str | None = None  # the corrected text the result came from, if it was repaired
    error: dict[str, Any] | None = None


class ResultStep(Protocol):
    """Turns a complete answer's text into a result (operations: parse and check JSON).
    `repair(prompt)` asks the model once more, after its own answer; None if that failed."""

    def finish(self, text: str, repair: Callable[[str], str | None]) -> StepResult: ...


class Answer:
    """The text, thinking, tool calls and usage of one answer, as they arrive."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict[str, str]] = []
        self.usage = Usage(None, None)
        self.finish_reason: str | None = None
        self.started = time.monotonic()
        self.first_output_at: float | None = None
        self._checkpointed = (0, 0)  # text and reasoning pieces stored so far

    def add_usage(self, usage: Usage, accumulate: bool = False) -> None:
        """Take the provider's counts; `accumulate` adds them (a further call, e.g. a repair)."""
        def merge(old: int | None, new: int | None) -> int | None:
            if new is None:
                return old
            return (old or 0) + new if accumulate else new
        self.usage = Usage(merge(self.usage.input_tokens, usage.input_tokens),
                           merge(self.usage.output_tokens, usage.output_tokens))

    def tool_call(self, call_id: str, name: str, arguments: str) -> dict[str, str]:
        call = {"id": storable(call_id), "name": storable(name), "arguments": storable(arguments)}
        self.tool_calls.append(call)
        return call

    def changed_since_checkpoint(self) -> bool:
        """True once per change: the caller stores the text now."""
        size = (len(self.text), len(self.reasoning))
        if size == self._checkpointed:
            return False
        self._checkpointed = size
        return True

    def usage_dict(self) -> dict[str, int | None]:
        return {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens}

    def metrics(self) -> dict[str, Any]:
        now = time.monotonic()
        first = self.first_output_at
        output_tokens = self.usage.output_tokens
        rate = None
        if first is not None and output_tokens and now > first:
            rate = round(output_tokens / (now - first), 1)
        return {
            "ttft_ms": None if first is None else round((first - self.started) * 1000),
            "duration_ms": round((now - self.started) * 1000),
            "tokens_per_sec": rate,
        }

    def stored_values(self, model_id: str, outcome: Outcome,
                      metrics: dict[str, Any]) -> dict[str, Any]:
        """The answer's row as it ends."""
        usage = self.usage_dict()
        return {"content": "".join(self.text), "reasoning": "".join(self.reasoning) or None,
                "model": model_id, "status": outcome.status,
                "finish_reason": outcome.finish_reason, "tool_calls": self.tool_calls or None,
                "error": outcome.error, "lease_expires_at": None, **usage, **metrics}
