"""What a run is asked to produce, as plain values, and the payloads it names itself by."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..providers import ChatRequest, ResolvedModel
from ..providers.catalog import AnswerLimits
from .answer import ResultStep
from .records import MESSAGES, OPERATION_RUNS, AnswerRow


@dataclass(frozen=True)
class Prepared:
    """What a request's preparation (`RunSpec.prepare`) changed: the messages to send
    instead, and the document excerpts among them (the answer keeps them, for citations)."""

    messages: tuple[Any, ...]
    sources: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ServerTools:
    """What a run needs to run the tools Sluice runs itself: the registry (a
    `services.tools.ToolRegistry`), the tools the request named (the model's own are
    added per model), what the tools may see, and how a round is stored: the answer's
    text and calls so far, and the round's results (`services.tools.ToolResult`)."""

    registry: Any
    requested: tuple[str, ...]
    user_id: str
    thread_id: str | None
    allow_private: bool
    store_round: Callable[[str, list[dict[str, Any]], Sequence[Any]], None]

    def offered(self, candidate: ResolvedModel) -> tuple[str, ...]:
        """The server tools `candidate` is offered: the request's and the model's own."""
        names = dict.fromkeys((*self.requested, *candidate.settings.tools))
        return tuple(name for name in names if name in self.registry)


@dataclass(frozen=True)
class RunSpec:
    """Everything a producer needs, as plain values."""

    stream_id: str
    # The row this run fills; None for a stateless answer (/v1), which stores nothing:
    # the event log is all there is of it.
    answer: AnswerRow | None
    thread_id: str | None
    candidates: tuple[ResolvedModel, ...]  # the model, then its fallbacks
    request: ChatRequest  # provider-neutral; addressed to each candidate in turn
    saved_messages: tuple[dict[str, Any], ...] = ()  # stored for this request: user or tool
    result_step: ResultStep | None = None  # an operation's: parse and check the text
    # Called with the `done` payload after the end is stored, before `done` is sent
    # (a job records its result there and says it is delivering).
    on_finish: Callable[[dict[str, Any]], None] | None = None
    # Events the stream begins with, before the producer's (a job's queued and running).
    prelude: tuple[tuple[str, dict[str, Any]], ...] = ()
    tools: ServerTools | None = None  # None: Sluice runs no tools in this answer
    # Work before the first model call, in the producer: called with a way to write
    # events and a way to call a model for its text; may return what to send instead
    # (a long thread's history with a new summary, documents' excerpts).
    prepare: Callable[[Callable[..., None], Callable[..., str | None]],
                      Prepared | None] | None = None
    # Told the input tokens the provider reported for the first round, and by which
    # model: token counts are corrected by what providers say (services/context).
    measured: Callable[[str, int], None] | None = None
    # Work after a complete answer, once `done` is sent (memories extracted from the
    # exchange): called with a way to call a model for its text and the answer's text.
    follow_up: Callable[[Callable[..., str | None], str], None] | None = None
    limits: AnswerLimits = field(default_factory=AnswerLimits)

    @property
    def message_id(self) -> str | None:
        return self.answer.id if self.answer and self.answer.table is MESSAGES else None

    @property
    def run_id(self) -> str | None:
        """The operation run this stream fills, if it is one."""
        return self.answer.id if self.answer and self.answer.table is OPERATION_RUNS else None

    def start_payload(self, model_id: str) -> dict[str, Any]:
        """The `start` event: which stream, which answer, which model."""
        start = {"stream_id": self.stream_id, "message_id": self.message_id,
                 "thread_id": self.thread_id, "model": model_id}
        if self.run_id is not None:
            start["run_id"] = self.run_id
        return start

    def done_payload(self, status: str, finish_reason: str, model_id: str,
                     usage: dict[str, Any], metrics: dict[str, Any],
                     result: Any = None, limit: str | None = None) -> dict[str, Any]:
        """The `done` event; an operation's carries its result, and an answer that an
        answer limit ended names the limit."""
        done: dict[str, Any] = {"status": status, "finish_reason": finish_reason,
                                "message_id": self.message_id, "model": model_id,
                                "usage": usage, "metrics": metrics}
        if self.run_id is not None:
            done.update(run_id=self.run_id, result=result)
        if limit is not None:
            done["limit"] = limit
        return done
