"""What a run has produced so far, and how it ends: its text, and the `done` it sends.

`Answer` accumulates the provider's events (text, reasoning, tool calls, usage) over
every round of the answer (a round is one model call; tools run between rounds) and
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
    limit: str | None = None  # the answer limit that ended it (finish_reason "length")


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


def _add(one: Usage, other: Usage) -> Usage:
    def plus(a: int | None, b: int | None) -> int | None:
        return a if b is None else b if a is None else a + b
    return Usage(plus(one.input_tokens, other.input_tokens),
                 plus(one.output_tokens, other.output_tokens))


class Answer:
    """The text, thinking, tool calls and usage of one answer, as they arrive."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self._banked = Usage(None, None)  # the usage of the rounds before this one
        self._current = Usage(None, None)  # this round's, as the provider reports it
        self.finish_reason: str | None = None
        self.round = 1
        self.sources: list[dict[str, Any]] | None = None  # the documents' excerpts it was given
        self._round_start = (0, 0)  # text pieces and tool calls before this round
        self.started = time.monotonic()
        self.first_output_at: float | None = None
        self._checkpointed = (0, 0)  # text and reasoning pieces stored so far

    @property
    def usage(self) -> Usage:
        """Every round's usage so far."""
        return _add(self._banked, self._current)

    @property
    def round_usage(self) -> Usage:
        """This round's usage alone, as its provider reported it (no summary call's)."""
        return self._current

    def add_usage(self, usage: Usage, accumulate: bool = False) -> None:
        """Take the provider's counts for this round; `accumulate` adds them (a further
        call, e.g. a repair)."""
        self._current = _add(self._current, usage) if accumulate else Usage(
            usage.input_tokens if usage.input_tokens is not None else self._current.input_tokens,
            usage.output_tokens if usage.output_tokens is not None
            else self._current.output_tokens)

    def begin_attempt(self) -> None:
        """A new call for this round: what a failed call reported does not count."""
        self._current = Usage(None, None)
        self.finish_reason = None
        del self.tool_calls[self._round_start[1]:]

    def bank_usage(self) -> None:
        """Calls made before the first round (a summary) count toward the answer."""
        self._banked, self._current = self.usage, Usage(None, None)

    def end_round(self) -> None:
        """This round's tools have run; the next model call is a new round."""
        self._banked = self.usage
        self._current = Usage(None, None)
        self.finish_reason = None
        self.round += 1
        self._round_start = (len(self.text), len(self.tool_calls))

    def round_text(self) -> str:
        return "".join(self.text[self._round_start[0]:])

    def round_calls(self) -> list[dict[str, Any]]:
        return self.tool_calls[self._round_start[1]:]

    def tool_call(self, call_id: str, name: str, arguments: str,
                  server: bool) -> dict[str, Any]:
        """Record a complete call of this round; `offset` is where its round's text ends in
        the whole answer's (set again when the round ends), so history can rebuild the
        rounds from one stored message."""
        call = {"id": storable(call_id), "name": storable(name), "arguments": storable(arguments),
                "server": server, "step": self.round, "offset": self.text_length()}
        self.tool_calls.append(call)
        return call

    def close_round_calls(self) -> None:
        end = self.text_length()
        for call in self.round_calls():
            call["offset"] = end

    def text_length(self) -> int:
        return sum(len(piece) for piece in self.text)

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
        kept = {} if self.sources is None else {"sources": self.sources}
        return {**kept, "content": "".join(self.text), "reasoning": "".join(self.reasoning) or None,
                "model": model_id, "status": outcome.status,
                "finish_reason": outcome.finish_reason, "tool_calls": self.tool_calls or None,
                "error": outcome.error, "lease_expires_at": None, **usage, **metrics}
