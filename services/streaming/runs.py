"""Runs: one model answer being produced, independent of any HTTP response.

A `StreamRun`'s producer (a thread; a greenlet under gunicorn's gevent worker)
calls the provider and appends every event to the stream's log; the process's
checkpointer stores the text of all its runs together, once an interval.
Responses only subscribe to the log, so a client that goes away changes nothing,
and only `cancel` stops the answer.

Until the answer's first visible output (text, reasoning or a tool call) a
failing model is retried with backoff, then its fallbacks are tried in order;
after it, a failure ends the answer with the text so far. `start` is written
when the answer starts (or fails for good), so it names the model that answered.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from ..providers import ChatRequest, ResolvedModel
from ..providers.base import (Finish, ProviderEvent, ProviderStream, ReasoningDelta, TextDelta,
                              ToolCall, Usage)
from ..providers.errors import ProviderError, ProviderTimeoutError
from ..storage import Database, Message
from ..storage.safe_text import storable
from .attempts import backoff_delay, stream_from_completion
from .deadlines import Deadline, Deadlines
from .event_log import EventLog
from .leases import INTERRUPTED
from .observer import NO_OBSERVER, StreamObserver

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """Everything a producer needs, as plain values."""

    stream_id: str
    # The assistant message this run fills; None for a stateless answer (/v1), which
    # stores nothing: the event log is all there is of it.
    message_id: str | None
    thread_id: str | None
    candidates: tuple[ResolvedModel, ...]  # the model, then its fallbacks
    request: ChatRequest  # provider-neutral; addressed to each candidate in turn
    saved_messages: tuple[dict[str, Any], ...] = ()  # stored for this request: user or tool


@dataclass(frozen=True)
class Outcome:
    status: str  # complete | cancelled | error
    finish_reason: str
    error: dict[str, Any] | None = None


_MESSAGES = Message.__table__
CANCELLED = Outcome("cancelled", "cancelled")
INTERRUPTED_OUTCOME = Outcome("interrupted", "error", INTERRUPTED)


def _failed(exc: ProviderError) -> Outcome:
    return Outcome("error", "error", {"code": exc.code, "message": storable(exc.message),
                                      "retryable": exc.retryable})


class StreamRun:
    """Produces one answer into the event log and the assistant message."""

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
        self._halt = threading.Event()  # cancelled or out of total time: stop everything
        self._lock = threading.Lock()
        self._upstream: ProviderStream | None = None
        self._first_token_expired = False  # for the current attempt
        self._first_token_deadline: Deadline | None = None
        self._model = spec.candidates[0]
        self._started_event = False
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: list[dict[str, str]] = []
        self._usage = Usage(None, None)
        self._finish_reason: str | None = None
        self._started = time.monotonic()
        self._first_output_at: float | None = None
        self._checkpointed = (0, 0)  # text and reasoning pieces stored so far

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

    def _expire_first_token(self) -> None:
        with self._lock:
            if self._first_output_at is not None:
                return
            self._first_token_expired = True
        self._stop_upstream(halt=False)

    def _stop_upstream(self, halt: bool = True) -> None:
        if halt:
            self._halt.set()
        with self._lock:
            upstream = self._upstream
        if upstream is not None:
            upstream.interrupt()

    # --- the producer ---------------------------------------------------------------

    def run(self) -> None:
        """The producer's body; always ends the stream with exactly one `done`."""
        total = self.deadlines.call_later(self._model.settings.timeouts.total,
                                          self._expire_total)
        try:
            outcome = self._generate()
        except Exception:  # a bug must not leave the message "streaming" forever
            logger.exception("stream %s failed", self.spec.stream_id)
            outcome = Outcome("error", "error", {"code": "internal_error", "retryable": False,
                                                 "message": "Sluice failed while streaming."})
        finally:
            self.deadlines.cancel(total)
        try:
            self._finish(outcome)
        finally:
            self.finished.set()

    def _generate(self) -> Outcome:
        error: ProviderError | None = None
        for candidate in self.spec.candidates:
            for attempt in range(candidate.settings.retry.attempts):
                if self._halt.is_set():
                    return self._halted(error)
                try:
                    return self._attempt(candidate)
                except ProviderError as exc:
                    error = exc
                    self.observer.attempt_failed(candidate.id, exc.code)
                if self._cancelled.is_set() or self._first_output_at is not None:
                    return self._halted(error)
                delay = backoff_delay(candidate.settings.retry, attempt, error)
                if delay is None:
                    break  # on to the next model
                logger.info("stream %s: %s failed (%s), retrying in %.2fs",
                            self.spec.stream_id, candidate.id, error.code, delay)
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
        return _failed(error) if error else CANCELLED

    def _attempt(self, candidate: ResolvedModel) -> Outcome:
        """One call to one model, streamed into the log; raises `ProviderError` on failure."""
        self._model = candidate
        self._usage, self._finish_reason = Usage(None, None), None
        self._first_token_expired = False
        self._arm_first_token_timer(candidate.settings.timeouts.first_token)
        request = candidate.request(self.spec.request)
        upstream = (candidate.provider.stream(request) if candidate.settings.streaming
                    else stream_from_completion(candidate.provider, request))
        with self._lock:
            self._upstream = upstream
        if self._halt.is_set() or self._first_token_expired:
            upstream.interrupt()
        try:
            for event in upstream:
                self._apply(event)
        finally:
            with self._lock:
                self._upstream = None
            upstream.close()
            self._disarm_first_token_timer()
        if self._halt.is_set():
            return self._halted(None)
        if self._first_token_expired:
            raise ProviderTimeoutError(f"{candidate.id} sent nothing within "
                                       f"{candidate.settings.timeouts.first_token:g}s")
        return Outcome("complete", self._finish_reason or "stop")

    def _arm_first_token_timer(self, seconds: float) -> None:
        if self._first_output_at is None:
            self._first_token_deadline = self.deadlines.call_later(seconds,
                                                                   self._expire_first_token)

    def _disarm_first_token_timer(self) -> None:
        self.deadlines.cancel(self._first_token_deadline)
        self._first_token_deadline = None

    # --- events ---------------------------------------------------------------------

    def _apply(self, event: ProviderEvent) -> None:
        if isinstance(event, TextDelta):
            self._output(self._text, "delta", storable(event.text))
        elif isinstance(event, ReasoningDelta):
            self._output(self._reasoning, "reasoning", storable(event.text))
        elif isinstance(event, ToolCall):
            call = {"id": storable(event.id), "name": storable(event.name),
                    "arguments": storable(event.arguments)}
            self._mark_output()
            self._tool_calls.append(call)
            self.log.append(self.spec.stream_id, "tool_call", call)
        elif isinstance(event, Usage):
            self._usage = Usage(
                event.input_tokens if event.input_tokens is not None else self._usage.input_tokens,
                event.output_tokens if event.output_tokens is not None
                else self._usage.output_tokens)
        elif isinstance(event, Finish):
            self._finish_reason = event.reason

    def _output(self, parts: list[str], event_type: str, text: str) -> None:
        first = self._first_output_at is None
        self._mark_output()
        parts.append(text)
        self.log.append(self.spec.stream_id, event_type, {"content": text})
        if first:
            # Let the readers send the first token now: when the upstream's bytes come in
            # a batch, the producer would otherwise parse (and store) all of it first.
            time.sleep(0)

    def _mark_output(self) -> None:
        """The first visible output: from here on the answer is committed to this model."""
        if self._first_output_at is not None:
            return
        with self._lock:
            self._first_output_at = time.monotonic()
        self.observer.first_output(self._model.id, self._first_output_at - self._started)
        self._disarm_first_token_timer()
        self._write_start()

    def _write_start(self) -> None:
        if self._started_event:
            return
        self._started_event = True
        spec = self.spec
        self.log.append(spec.stream_id, "start", {
            "stream_id": spec.stream_id, "message_id": spec.message_id,
            "thread_id": spec.thread_id, "model": self._model.id})
        for message in spec.saved_messages:
            self.log.append(spec.stream_id, "message_saved", {"message": message})

    # --- storage --------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any] | None:
        """The text so far, for the process's grouped checkpoint (checkpoints.py), if it
        has grown since the last one; a crash then loses at most one interval of it."""
        if self.spec.message_id is None:
            return None  # a stateless answer: nothing to store
        size = (len(self._text), len(self._reasoning))
        if size == self._checkpointed or self.finished.is_set():
            return None
        self._checkpointed = size
        return {"message_id": self.spec.message_id, "content": "".join(self._text),
                "reasoning": "".join(self._reasoning) or None, "model": self._model.id}

    def _store(self, **values: Any) -> None:
        if self.spec.message_id is None:
            return  # a stateless answer: nothing to store
        # A Core statement on one connection: no ORM session on the path of every end.
        with self.db.engine.begin() as connection:
            connection.execute(update(_MESSAGES).where(_MESSAGES.c.id == self.spec.message_id)
                               .values(**values))

    def _metrics(self) -> dict[str, Any]:
        now = time.monotonic()
        first = self._first_output_at
        output_tokens = self._usage.output_tokens
        rate = None
        if first is not None and output_tokens and now > first:
            rate = round(output_tokens / (now - first), 1)
        return {
            "ttft_ms": None if first is None else round((first - self._started) * 1000),
            "duration_ms": round((now - self._started) * 1000),
            "tokens_per_sec": rate,
        }

    def _finish(self, outcome: Outcome) -> None:
        """Store the final message, then tell subscribers: `error`?, `usage`?, `done`."""
        metrics = self._metrics()
        usage = {"input_tokens": self._usage.input_tokens,
                 "output_tokens": self._usage.output_tokens}
        try:
            self._store(content="".join(self._text), reasoning="".join(self._reasoning) or None,
                        model=self._model.id, status=outcome.status,
                        finish_reason=outcome.finish_reason, tool_calls=self._tool_calls or None,
                        error=outcome.error, lease_expires_at=None,
                        input_tokens=usage["input_tokens"],
                        output_tokens=usage["output_tokens"], **metrics)
        except SQLAlchemyError:
            logger.exception("storing the end of stream %s failed", self.spec.stream_id)
            outcome = Outcome("error", "error", {"code": "storage_error", "retryable": True,
                                                 "message": "The answer could not be stored."})
        self.observer.answer_ended(self._model.id, outcome.status, metrics["duration_ms"] / 1000,
                                   usage["input_tokens"], usage["output_tokens"])
        stream_id = self.spec.stream_id
        self._write_start()
        if outcome.error:
            self.log.append(stream_id, "error", outcome.error)
        if usage["input_tokens"] is not None or usage["output_tokens"] is not None:
            self.log.append(stream_id, "usage", usage)
        self.log.append(stream_id, "done", {
            "status": outcome.status, "finish_reason": outcome.finish_reason,
            "message_id": self.spec.message_id, "model": self._model.id,
            "usage": usage, "metrics": metrics})
