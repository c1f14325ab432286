"""What a reply in a thread sends: the history fitted to the model's window, the user's
memories in the system prompt, and, for a long thread, a new summary made in the
producer (a `summarizing` status says so) before the model is called.

Fitting happens before anything is stored, so a request that can never fit is a
`400 context_too_long` that changes nothing. The summary is written by the run,
never on the request's path: the client already has `start` by then.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..auth import Identity
from ..memory import user_memory_prompt
from ..providers import ChatMessage, ResolvedModel, ToolSpec
from ..storage import Database
from .budget import Budget, Fitted, budget_for, fit, split_last_exchange
from .summaries import (Summary, after_summary, history_with_summary, latest_summary,
                        needs_summary, summarize)
from .tokens import count_text, count_tools

# At most this share of the window goes to the user's memories.
MEMORY_SHARE = 0.05
MEMORY_MOST_TOKENS = 800


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


def thread_context(connection: Any, thread_id: str, system: str | None,
                   messages: Sequence[Any], model: ResolvedModel, tools: tuple[ToolSpec, ...],
                   calibration: Any) -> ThreadContext:
    """Fit `messages` (the thread's stored ones and the request's) for `model`; raises
    `ContextTooLong` (a 400) if the request alone cannot fit."""
    summary = latest_summary(connection, thread_id)
    stored = tuple(after_summary(summary, messages))
    return ThreadContext(thread_id, system, model, tools, summary, stored,
                         _fit(summary, stored, system, model, tools, calibration), calibration)


class _NoSummary(Exception):
    """The summary model gave no text: nothing is stored."""


def summarizer(found: ThreadContext, db: Database, share: float,
               summary_model: ResolvedModel) -> Callable[..., tuple[ChatMessage, ...] | None]:
    """The run's preparation for a long thread: when its history passes `share` of the
    budget, summarize the oldest turns into a stored summary (incrementally: the last
    summary and what came after it) and send that instead."""
    def prepare(status: Callable[..., None],
                complete: Callable[[ResolvedModel, tuple[ChatMessage, ...]], str | None],
                ) -> tuple[ChatMessage, ...] | None:
        if not needs_summary(found.fitted, share):
            return None
        status("summarizing", "Summarizing the earlier conversation…",
               model=summary_model.id)
        keep = int(found.fitted.budget.available * share / 2)

        def text(prompt: tuple[ChatMessage, ...]) -> str:
            written = complete(summary_model, prompt)
            if not written:
                raise _NoSummary
            return written
        try:
            summary = summarize(db, found.thread_id, found.summary, found.stored, keep, text,
                                summary_model.id)
        except _NoSummary:  # the call failed: the history as fitted, oldest turns left out
            return None
        if summary is None:
            return None
        stored = after_summary(summary, found.stored)
        return _fit(summary, stored, found.system, found.model, found.tools,
                    found.calibration).messages
    return prepare
