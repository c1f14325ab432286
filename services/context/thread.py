"""What a reply in a thread sends: the history fitted to the model's window, the user's
memories in the system prompt, and, made in the producer before the model is called,
a new summary of a long thread (`status` summarizing) and the chunks of the user's
documents that answer the message (`status` retrieving, then `sources`).

Fitting happens before anything is stored, so a request that can never fit is a
`400 context_too_long` that changes nothing. The summary is written by the run,
never on the request's path: the client already has `start` by then.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..auth import Identity
from ..documents import sources_prompt
from ..memory import user_memory_prompt
from ..providers import ChatMessage, ResolvedModel, ToolSpec
from ..storage import Database
from ..streaming.spec import Prepared
from .budget import Budget, Fitted, budget_for, fit, split_last_exchange
from .summaries import Summary, after_summary, history_with_summary, needs_summary, summarize
from .tokens import count_text, count_tools

# At most this share of the window goes to the user's memories, and to document excerpts.
MEMORY_SHARE = 0.05
MEMORY_MOST_TOKENS = 800
SOURCES_SHARE = 0.25
SOURCES_MOST_TOKENS = 4000

Emit = Callable[[str, dict[str, Any]], None]
Complete = Callable[[ResolvedModel, tuple[ChatMessage, ...]], "str | None"]


def system_prompt(session: Any, user: Identity, system: str | None, model_id: str,
                  budget: Budget) -> str | None:
    """The thread's system prompt with what Sluice remembers about the user."""
    limit = min(MEMORY_MOST_TOKENS, int(budget.available * MEMORY_SHARE))
    memories = user_memory_prompt(session, user, limit,
                                  lambda text: count_text(text, model_id))
    return "\n\n".join(part for part in (system, memories) if part) or None


@dataclass(frozen=True)
class ThreadContext:
    """A reply's history as fitted now, and what a summary of it would need."""

    thread_id: str
    system: str | None
    model: ResolvedModel
    tools: tuple[ToolSpec, ...]
    summary: Summary | None
    stored: tuple[Any, ...]  # the stored messages after `summary`, the request's included
    fitted: Fitted
    calibration: Any

    @property
    def messages(self) -> tuple[ChatMessage, ...]:
        return self.fitted.messages


def _fit(summary: Summary | None, stored: Sequence[Any], system: str | None,
         model: ResolvedModel, tools: tuple[ToolSpec, ...], calibration: Any) -> Fitted:
    older, current = split_last_exchange(history_with_summary(summary, stored))
    return fit(system, older, current, budget_for(model.settings), model.id, calibration,
               extra=count_tools(tools, model.id))


def thread_context(thread_id: str, system: str | None, summary: Summary | None,
                   messages: Sequence[Any], model: ResolvedModel, tools: tuple[ToolSpec, ...],
                   calibration: Any) -> ThreadContext:
    """Fit `messages` (the thread's stored ones after `summary`, and the request's) for
    `model`; raises `ContextTooLong` (a 400) if the request alone cannot fit."""
    stored = tuple(after_summary(summary, messages))
    return ThreadContext(thread_id, system, model, tools, summary, stored,
                         _fit(summary, stored, system, model, tools, calibration), calibration)


class _NoSummary(Exception):
    """The summary model gave no text: nothing is stored."""


@dataclass(frozen=True)
class Retrieval:
    """How the producer searches the user's documents for this reply: `scope()` the
    documents to search (None: all of the user's; [] nothing to search, so nothing is
    said), `search(query, scope)` the best chunks, and the query, the user's message.
    Both open their own session: none of it is on the request's path."""

    scope: Callable[[], list[str] | None]
    search: Callable[[str, list[str] | None], list[Any]]
    query: str


class Preparation:
    """The run's preparation (`RunSpec.prepare`): a new summary when the history passes
    `share` of the budget (incrementally: the last summary and what came after it), and
    the document excerpts that answer the message, in the system prompt. It also knows
    how many tokens it counted for what it sent, for the provider's usage to correct
    (`measured`)."""

    def __init__(self, found: ThreadContext, db: Database, share: float,
                 summary_model: ResolvedModel, retrieval: Retrieval | None) -> None:
        self.found, self.db, self.share = found, db, share
        self.summary_model, self.retrieval = summary_model, retrieval
        self.counted = found.fitted.counted

    def __call__(self, emit: Emit, complete: Complete) -> Prepared | None:
        """What to send instead of the messages fitted at the request, or None."""
        found = self.found
        summary, stored = found.summary, found.stored
        if needs_summary(found.fitted, self.share):
            emit("status", {"stage": "summarizing", "model": self.summary_model.id,
                            "message": "Summarizing the earlier conversation…"})
            made = _summarize(found, self.db, self.share, self.summary_model, complete)
            if made is not None:
                summary, stored = made, tuple(after_summary(made, found.stored))
        excerpts = _excerpts(found, self.retrieval, emit) if self.retrieval else None
        if summary is found.summary and excerpts is None:
            return None
        text = excerpts.text if excerpts else None
        system = "\n\n".join(part for part in (found.system, text) if part) or None
        fitted = _fit(summary, stored, system, found.model, found.tools, found.calibration)
        self.counted = fitted.counted
        return Prepared(fitted.messages, excerpts.sources if excerpts else None)

    def measured(self, model_id: str, reported: int) -> None:
        """The provider's count of the first round's input corrects later counts."""
        if model_id == self.found.model.id:
            self.found.calibration.record_usage(model_id, self.counted, reported)


def _summarize(found: ThreadContext, db: Database, share: float, model: ResolvedModel,
               complete: Complete) -> Summary | None:
    def text(prompt: tuple[ChatMessage, ...]) -> str:
        written = complete(model, prompt)
        if not written:
            raise _NoSummary
        return written
    keep = int(found.fitted.budget.available * share / 2)
    # The summarizer's own window holds the instructions, the summary so far and its
    # answer besides the turns: give it half of what it has for the turns.
    most = budget_for(model.settings).available // 2
    try:
        return summarize(db, found.thread_id, found.summary, found.stored, keep, text, model.id,
                         most_tokens=most)
    except _NoSummary:  # the call failed: the history as fitted, oldest turns left out
        return None


@dataclass(frozen=True)
class _Excerpts:
    text: str  # the system-prompt section
    sources: list[dict[str, Any]]  # as the `sources` event lists them


def _excerpts(found: ThreadContext, retrieval: Retrieval, emit: Emit) -> _Excerpts | None:
    """Search (saying so, when there is anything to search), tell the readers which
    chunks the model is given (`sources`), and return them as a system-prompt section
    that fits its share of the window."""
    scope = retrieval.scope()
    if scope == []:
        return None
    emit("status", {"stage": "retrieving", "message": "Searching your documents…"})
    limit = min(SOURCES_MOST_TOKENS, int(found.fitted.budget.available * SOURCES_SHARE))
    prompt = sources_prompt(retrieval.search(retrieval.query, scope), limit,
                            lambda text: count_text(text, found.model.id))
    sources = [source.to_event() for source in prompt.sources]
    emit("sources", {"sources": sources})
    return _Excerpts(prompt.text, sources) if sources else None
