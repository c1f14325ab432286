"""Runs: one model answer being produced, independent of any HTTP response.

A `StreamRun`'s producer (a thread; a greenlet under gunicorn's gevent worker)
calls the provider and appends every event to the stream's log; the process's
checkpointer stores the text of all its runs together, once an interval.
Responses only subscribe to the log, so a client that goes away changes nothing,
and only `cancel` stops the answer.

`start` is written before the producer begins (the manager does it), naming the
model asked for; `status` events say what the answer waits on (connecting,
retrying, a fallback, a tool, the next step), and `done` names the model that
answered. Until a round's first visible output (text, reasoning or a tool call) a
failing model is retried with backoff and, in the first round, its fallbacks are
tried in order; after it, a failure ends the answer with the text so far.

An answer is one or more rounds: when a model calls tools that Sluice runs itself,
they run concurrently, their results go back to the same model, and it goes on —
within the answer's limits (tool_rounds.py). A call of a caller's tool ends the turn.

A run stores into its answer row (a message, or an operation run: records.py);
an operation's result step then makes its result of the complete text.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..providers import ChatRequest, ResolvedModel
from ..providers.base import (Finish, ProviderEvent, ProviderStream, ReasoningDelta, TextDelta,
                              ToolCall, Usage)
from ..providers.errors import ProviderError, ProviderTimeoutError
from ..storage import Database
from ..storage.safe_text import storable
from .answer import Answer, Outcome
from .attempts import backoff_delay
from .deadlines import Deadline, Deadlines
from .event_log import EventLog
from .leases import INTERRUPTED
from .observer import NO_OBSERVER, StreamObserver
from .spec import RunSpec
from .side_calls import SideCalls
from .tool_rounds import ToolRounds
from .upstream import Upstream

logger = logging.getLogger(__name__)


CANCELLED = Outcome("cancelled", "cancelled")
INTERRUPTED_OUTCOME = Outcome("interrupted", "error", INTERRUPTED)


def _failed(exc: ProviderError) -> Outcome:
    return Outcome("error", "error", {"code": exc.code, "message": storable(exc.message),
                                      "retryable": exc.retryable})


class StreamRun(SideCalls):
    """Produces one answer into the event log and its stored row."""

    def __init__(self, spec: RunSpec, log: EventLog, db: Database,
                 deadlines: Deadlines, observer: StreamObserver = NO_OBSERVER) -> None:
        self.spec = spec
        self.observer = observer  # metrics: first output, failed attempts, the end
        self.log = log
        self.db = db
        self.deadlines = deadlines
        self.finished = threading.Event()
        self._cancelled = threading.Event()
        self._interrupted = threading.Event()  # the server is shutting down
        self._total_expired = threading.Event()
        self._budget_spent = threading.Event()  # past the answer's own `max_seconds`
        # Cancelled, interrupted or out of time: stop everything, running tools included.
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.upstream = Upstream()
        self._first_token_expired = False  # for the current attempt
        self._first_token_deadline: Deadline | None = None
        self._model = spec.candidates[0]
        self._round_output = False  # the current round has shown something
        self.answer = Answer()
        self.request = spec.request  # as prepared (_prepare), before each round's additions
        self.rounds = ToolRounds(spec, self.answer, self.db, self._halt)
        self._result: dict[str, Any] = {}  # an operation's result and repaired text

    # --- control, from any thread ---------------------------------------------------

    def cancel(self) -> None:
        """Stop the answer: the producer stops reading and the upstream connection is cut."""
        self._cancelled.set()
        self._stop_upstream()

    def interrupt(self) -> None:
        """End the answer now because the server is going away; the text so far is kept."""
        self._interrupted.set()
        self._stop_upstream()

    def _expire_total(self) -> None:
        self._total_expired.set()
        self._stop_upstream()

    def _spend_budget(self) -> None:
        self._budget_spent.set()
        self._stop_upstream()

    def _expire_first_token(self) -> None:
        with self._lock:
            if self._round_output:
                return
            self._first_token_expired = True
        self._stop_upstream(halt=False)

    def _stop_upstream(self, halt: bool = True) -> None:
        if halt:
            self._halt.set()
        self.upstream.interrupt()

    # --- the producer ---------------------------------------------------------------

    def run(self) -> None:
        """The producer's body; always ends the stream with exactly one `done`."""
        total = self.deadlines.call_later(self._model.settings.timeouts.total,
                                          self._expire_total)
        seconds = self.spec.limits.seconds
        budget = None if seconds is None else self.deadlines.call_later(seconds,
                                                                         self._spend_budget)
        try:
            outcome = self._generate()
            if outcome.status == "complete" and self.spec.result_step is not None:
                outcome = self._make_result(outcome)
        except Exception:  # a bug must not leave the answer "streaming" forever
            logger.exception("stream %s failed", self.spec.stream_id)
            outcome = Outcome("error", "error", {"code": "internal_error", "retryable": False,
                                                 "message": "Sluice failed while streaming."})
        finally:
            self.deadlines.cancel(total)
            self.deadlines.cancel(budget)
        try:
            self._finish(outcome)
        finally:
            self.finished.set()
        if outcome.status == "complete" and self.spec.follow_up is not None:
            self._follow_up()

    def _generate(self) -> Outcome:
        """The first round with fallbacks, then a round after each round of server tools."""
        self._prepare()
        if self._halt.is_set():
            return self._halted(None)
        outcome = self._round(self.spec.candidates)
        # What the provider counted for the prompt this run measured: the first round's
        # own input, without a summary call banked before it.
        reported = self.answer.round_usage.input_tokens
        if self.spec.measured is not None and reported is not None:
            self.spec.measured(self._model.id, reported)
        while outcome.status == "complete" and outcome.finish_reason == "tool_calls":
            step = self.rounds.after_round(self._model, self.status, self._emit)
            if step.outcome is not None:
                return step.outcome
            if self._halt.is_set():
                return self._halted(None)
            if step.caller_turn:
                return outcome
            self.answer.end_round()
            self._round_output = False
            self.status("step", f"Step {self.answer.round} of at most "
                                f"{self.spec.limits.rounds}: back to {self._model.id}.",
                        step=self.answer.round, max_steps=self.spec.limits.rounds)
            outcome = self._round((self._model,))
        return outcome

    def _round(self, candidates: tuple[ResolvedModel, ...]) -> Outcome:
        """One round: the first model that answers, retried with backoff until it shows
        something, then the next candidate."""
        error: ProviderError | None = None
        for index, candidate in enumerate(candidates):
            if index > 0 and error is not None:
                self.status("fallback", f"{self._model.id} is not answering ({error.code}); "
                                        f"trying {candidate.id}.",
                            model=candidate.id, reason=error.code)
            for attempt in range(candidate.settings.retry.attempts):
                if self._halt.is_set():
                    return self._halted(error)
                try:
                    return self._attempt(candidate)
                except ProviderError as exc:
                    error = exc
                    self.observer.attempt_failed(candidate.id, exc.code)
                if self._cancelled.is_set() or self._round_output:
                    return self._halted(error)
                delay = backoff_delay(candidate.settings.retry, attempt, error)
                if delay is None:
                    break  # on to the next model
                logger.info("stream %s: %s failed (%s), retrying in %.2fs",
                            self.spec.stream_id, candidate.id, error.code, delay)
                self.status("retrying", f"{candidate.id} failed ({error.code}); "
                                        f"retrying in {delay:.0f} s.",
                            attempt=attempt + 2, delay=round(delay, 2), reason=error.code,
                            model=candidate.id)
                if self._halt.wait(delay):
                    return self._halted(error)
        return self._halted(error)

    def _halted(self, error: ProviderError | None) -> Outcome:
        if self._interrupted.is_set():
            return INTERRUPTED_OUTCOME
        if self._cancelled.is_set():
            return CANCELLED
        if self._total_expired.is_set():
            return _failed(ProviderTimeoutError(
                f"the answer took longer than {self._model.settings.timeouts.total:g}s"))
        if self._budget_spent.is_set():
            return Outcome("complete", "length", limit="max_seconds")
        return _failed(error) if error else CANCELLED

    def _open(self, candidate: ResolvedModel, request: ChatRequest) -> ProviderStream:
        """The upstream call, with this round's conversation and tools."""
        request = candidate.request(self.rounds.request(request, candidate))
        return self.upstream.open(candidate, request, self._stopping)

    def _stopping(self) -> bool:
        return self._halt.is_set() or self._first_token_expired

    def _attempt(self, candidate: ResolvedModel) -> Outcome:
        """One call to one model, streamed into the log; raises `ProviderError` on failure."""
        self._model = candidate
        self.answer.begin_attempt()
        self._first_token_expired = False
        if self.rounds.out_of_tokens():
            return Outcome("complete", "length", limit="max_tokens")
        self.status("connecting", f"Waiting for {candidate.id}…", model=candidate.id)
        self._arm_first_token_timer(candidate.settings.timeouts.first_token)
        upstream: ProviderStream | None = None
        try:
            upstream = self._open(candidate, self.request)
            for event in upstream:
                self._apply(event)
        except ProviderError:
            if not self._stopping():
                raise  # a failure of its own, not the connection we cut
        finally:
            self.upstream.release(upstream)
            self._disarm_first_token_timer()
        if self._halt.is_set():
            return self._halted(None)
        if self._first_token_expired:
            raise ProviderTimeoutError(f"{candidate.id} sent nothing within "
                                       f"{candidate.settings.timeouts.first_token:g}s")
        return self.rounds.ended(self.answer.finish_reason or "stop")

    def _arm_first_token_timer(self, seconds: float) -> None:
        if not self._round_output:
            self._first_token_deadline = self.deadlines.call_later(seconds,
                                                                   self._expire_first_token)

    def _disarm_first_token_timer(self) -> None:
        self.deadlines.cancel(self._first_token_deadline)
        self._first_token_deadline = None

    # --- events ---------------------------------------------------------------------

    def status(self, stage: str, message: str, **details: Any) -> None:
        """Tell the stream's readers what the answer is waiting on."""
        self._emit("status", {"stage": stage, "message": message, **details})

    def _emit(self, event_type: str, payload: dict[str, Any]) -> None:
        self.log.append(self.spec.stream_id, event_type, payload)

    def _apply(self, event: ProviderEvent) -> None:
        if isinstance(event, TextDelta):
            self._output(self.answer.text, "delta", storable(event.text))
        elif isinstance(event, ReasoningDelta):
            self._output(self.answer.reasoning, "reasoning", storable(event.text))
        elif isinstance(event, ToolCall):
            self._mark_output()
            call = self.rounds.tool_call(event, self._model)
            self._emit("tool_call", {key: call[key] for key in ("id", "name", "arguments",
                                                                 "server")})
        elif isinstance(event, Usage):
            self.answer.add_usage(event)
        elif isinstance(event, Finish):
            self.answer.finish_reason = event.reason

    def _output(self, parts: list[str], event_type: str, text: str) -> None:
        first = self.answer.first_output_at is None
        self._mark_output()
        parts.append(text)
        self.log.append(self.spec.stream_id, event_type, {"content": text})
        if first:
            # Let the readers send the first token now: when the upstream's bytes come in
            # a batch, the producer would otherwise parse (and store) all of it first.
            time.sleep(0)

    def _mark_output(self) -> None:
        """The round's first visible output: from here on the round is committed to this
        model (and the answer too, from its first output on)."""
        if self._round_output:
            return
        with self._lock:
            self._round_output = True
        self._disarm_first_token_timer()
        if self.answer.first_output_at is None:
            self.answer.first_output_at = time.monotonic()
            self.observer.first_output(self._model.id,
                                       self.answer.first_output_at - self.answer.started)

    # --- storage --------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any] | None:
        """The text so far, for the process's grouped checkpoint (checkpoints.py), if it
        has grown since the last one; a crash then loses at most one interval of it."""
        answer = self.spec.answer
        if answer is None or self.finished.is_set() or not self.answer.changed_since_checkpoint():
            return None
        return {"table": answer.table, "row_id": answer.id, "content": "".join(self.answer.text),
                "reasoning": "".join(self.answer.reasoning) or None, "model": self._model.id}

    def _finish(self, outcome: Outcome) -> None:
        """Store the answer's end, then tell subscribers: `error`?, `usage`?, `done`."""
        metrics = self.answer.metrics()
        usage = self.answer.usage_dict()
        try:
            if self.spec.answer is not None:
                self.spec.answer.store(self.db, {
                    **self.answer.stored_values(self._model.id, outcome, metrics),
                    **self._result})
        except SQLAlchemyError:
            logger.exception("storing the end of stream %s failed", self.spec.stream_id)
            outcome = Outcome("error", "error", {"code": "storage_error", "retryable": True,
                                                 "message": "The answer could not be stored."})
        self.observer.answer_ended(self._model.id, outcome.status, metrics["duration_ms"] / 1000,
                                   usage["input_tokens"], usage["output_tokens"])
        stream_id = self.spec.stream_id
        done = self.spec.done_payload(outcome.status, outcome.finish_reason, self._model.id,
                                      usage, metrics, self._result.get("result"),
                                      outcome.limit)
        if self.spec.on_finish is not None:
            try:
                self.spec.on_finish(done)
            except Exception:  # the stream still ends; the job's reaper will see to it
                logger.exception("finishing stream %s: its follow-up failed", stream_id)
        if outcome.error:
            self.log.append(stream_id, "error", outcome.error)
        if usage["input_tokens"] is not None or usage["output_tokens"] is not None:
            self.log.append(stream_id, "usage", usage)
        self.log.append(stream_id, "done", done)
