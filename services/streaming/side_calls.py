"""Model calls a run makes besides its rounds, whose text is collected, not streamed:
before the first round (the request's preparation, e.g. a long thread's summary),
after a complete answer (an operation's result checked and, once, repaired), and
after `done` (a follow-up such as extracting memories).

A mixin of `StreamRun` (runs.py), kept apart so the round loop reads on its own; it
uses the run's spec, answer, upstream, request and events.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..providers import ChatRequest, ResolvedModel
from ..providers.base import ChatMessage, TextDelta, Usage
from ..providers.errors import ProviderError
from ..storage.safe_text import storable
from .answer import Outcome

if TYPE_CHECKING:
    from .runs import StreamRun

logger = logging.getLogger(__name__)


class SideCalls:
    """The calls of a `StreamRun` outside its rounds."""

    def _make_result(self: StreamRun, outcome: Outcome) -> Outcome:
        step = self.spec.result_step
        assert step is not None
        made = step.finish("".join(self.answer.text), self._repair)
        self._result = {"result": made.result, "repaired": made.repaired}
        if self._halt.is_set():
            return self._halted(None)
        return outcome if made.error is None else Outcome("error", "error", made.error)

    def _repair(self: StreamRun, prompt: str) -> str | None:
        """Ask the model that answered once more, after its answer: `prompt` says what was
        wrong. Its text is collected, not streamed; None if the call failed."""
        self.status("retrying", "The answer was not valid; asking the model to correct it.",
                    reason="invalid_output", attempt=2)
        request = replace(self.request, messages=(
            *self.request.messages, ChatMessage("assistant", "".join(self.answer.text)),
            ChatMessage("user", prompt)))
        return self._collect_text(self._model, request, "repair")

    def _collect_text(self: StreamRun, model: ResolvedModel, request: ChatRequest,
                      purpose: str) -> str | None:
        """A call whose text is collected, not streamed (a repair, a summary); its usage
        counts toward the answer's. None if it failed or the answer was stopped."""
        pieces: list[str] = []
        try:
            upstream = self.upstream.open(model, model.request(request), self._stopping)
            try:
                for event in upstream:
                    if isinstance(event, TextDelta):
                        pieces.append(storable(event.text))
                    elif isinstance(event, Usage):
                        self.answer.add_usage(event, accumulate=True)
            finally:
                self.upstream.release(upstream)
        except ProviderError as exc:
            logger.info("stream %s: the %s call failed (%s)", self.spec.stream_id, purpose,
                        exc.code)
            return None
        return None if self._halt.is_set() else "".join(pieces)

    def _complete(self: StreamRun, model: ResolvedModel,
                  messages: tuple[ChatMessage, ...]) -> str | None:
        """The text `model` answers to `messages`: what preparations and follow-ups call."""
        return self._collect_text(model, ChatRequest(model="", messages=messages), "side")

    def _follow_up(self: StreamRun) -> None:
        """The answer's follow-up, after its stream has ended: its failure is logged, as
        the answer it follows is complete and stored."""
        assert self.spec.follow_up is not None
        try:
            self.spec.follow_up(self._complete, "".join(self.answer.text))
        except Exception:
            logger.exception("the follow-up of stream %s failed", self.spec.stream_id)

    def _prepare(self: StreamRun) -> None:
        """The request's own preparation, in the producer: it may replace the messages
        (a long thread's history summarized, documents' excerpts added), telling the
        readers with its events (`status`, `sources`)."""
        if self.spec.prepare is None:
            return
        prepared = self.spec.prepare(self._emit, self._complete)
        self.answer.bank_usage()
        if prepared is not None:
            self.request = replace(self.request, messages=prepared.messages)
            self.answer.sources = prepared.sources
