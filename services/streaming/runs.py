"""Runs: one model answer being produced, independent of any HTTP response.

A `StreamRun`'s producer (a thread; a greenlet under gunicorn's gevent worker)
calls the provider, appends every event to the stream's log and checkpoints the
answer to the database by time. Responses only subscribe to the log, so a client
that goes away changes nothing, and only `cancel` stops the answer.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from ..providers.base import (ChatRequest, Finish, Provider, ProviderEvent, ProviderStream,
                              ReasoningDelta, TextDelta, ToolCall, Usage)
from ..providers.errors import ProviderError
from ..storage import Database, Message
from .event_log import EventLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """Everything a producer needs, as plain values."""

    stream_id: str
    message_id: str  # the assistant message this run fills
    thread_id: str | None
    model: str  # public name, "provider/model"
    request: ChatRequest
    user_message: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    status: str  # complete | cancelled | error
    finish_reason: str
    error: dict[str, Any] | None = None


def _error_outcome(code: str, message: str, retryable: bool) -> Outcome:
    return Outcome("error", "error", {"code": code, "message": message, "retryable": retryable})


class StreamRun:
    """Produces one answer into the event log and the assistant message."""

    def __init__(self, spec: RunSpec, provider: Provider, log: EventLog, db: Database,
                 checkpoint_seconds: float) -> None:
        self.spec = spec
        self.provider = provider
        self.log = log
        self.db = db
        self.checkpoint_seconds = checkpoint_seconds
        self.finished = threading.Event()
        self._cancelled = threading.Event()
        self._upstream: ProviderStream | None = None
        self._upstream_lock = threading.Lock()
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: list[dict[str, str]] = []
        self._usage = Usage(None, None)
        self._finish_reason: str | None = None
        self._started = time.monotonic()
        self._first_output_at: float | None = None
        self._last_checkpoint = self._started
        self._dirty = False

    def cancel(self) -> None:
        """Stop the answer: the producer stops reading and the upstream connection closes."""
        self._cancelled.set()
        with self._upstream_lock:
            upstream = self._upstream
        if upstream is not None:
            upstream.interrupt()

    def run(self) -> None:
        """The producer's body; always ends the stream with exactly one `done`."""
        try:
            outcome = self._generate()
        except Exception:  # a bug must not leave the message "streaming" forever
            logger.exception("stream %s failed", self.spec.stream_id)
            outcome = _error_outcome("internal_error", "Sluice failed while streaming this answer.",
                                     False)
        try:
            self._finish(outcome)
        finally:
            self.finished.set()

    def _generate(self) -> Outcome:
        try:
            upstream = self.provider.stream(self.spec.request)
        except ProviderError as exc:
            return _error_outcome(exc.code, exc.message, exc.retryable)
        with self._upstream_lock:
            self._upstream = upstream
        try:
            if not self._cancelled.is_set():
                for event in upstream:
                    self._apply(event)
                    if self._cancelled.is_set():
                        break
        except ProviderError as exc:
            if not self._cancelled.is_set():
                return _error_outcome(exc.code, exc.message, exc.retryable)
        finally:
            upstream.close()
        if self._cancelled.is_set():
            return Outcome("cancelled", "cancelled")
        return Outcome("complete", self._finish_reason or "stop")

    def _apply(self, event: ProviderEvent) -> None:
        if isinstance(event, TextDelta):
            self._output(self._text, "delta", event.text)
        elif isinstance(event, ReasoningDelta):
            self._output(self._reasoning, "reasoning", event.text)
        elif isinstance(event, ToolCall):
            call = {"id": event.id, "name": event.name, "arguments": event.arguments}
            self._tool_calls.append(call)
            self._mark_output()
            self.log.append(self.spec.stream_id, "tool_call", call)
        elif isinstance(event, Usage):
            self._usage = Usage(event.input_tokens if event.input_tokens is not None
                                else self._usage.input_tokens,
                                event.output_tokens if event.output_tokens is not None
                                else self._usage.output_tokens)
        elif isinstance(event, Finish):
            self._finish_reason = event.reason

    def _output(self, parts: list[str], event_type: str, text: str) -> None:
        parts.append(text)
        self._mark_output()
        self.log.append(self.spec.stream_id, event_type, {"content": text})
        self._dirty = True
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds:
            self._checkpoint()

    def _mark_output(self) -> None:
        if self._first_output_at is None:
            self._first_output_at = time.monotonic()

    def _checkpoint(self) -> None:
        """Store the text so far, so a crash loses at most one interval of it."""
        self._last_checkpoint = time.monotonic()
        self._dirty = False
        try:
            self._store(content="".join(self._text), reasoning="".join(self._reasoning) or None)
        except SQLAlchemyError:
            logger.exception("checkpoint of stream %s failed; will retry", self.spec.stream_id)
            self._dirty = True

    def _store(self, **values: Any) -> None:
        with self.db.transaction() as session:
            session.execute(update(Message).where(Message.id == self.spec.message_id)
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
                        status=outcome.status, finish_reason=outcome.finish_reason,
                        tool_calls=self._tool_calls or None, error=outcome.error,
                        input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"],
                        **metrics)
        except SQLAlchemyError:
            logger.exception("storing the end of stream %s failed", self.spec.stream_id)
            outcome = _error_outcome("storage_error", "The answer could not be stored.", True)
        stream_id = self.spec.stream_id
        if outcome.error:
            self.log.append(stream_id, "error", outcome.error)
        if usage["input_tokens"] is not None or usage["output_tokens"] is not None:
            self.log.append(stream_id, "usage", usage)
        self.log.append(stream_id, "done", {
            "status": outcome.status,
            "finish_reason": outcome.finish_reason,
            "message_id": self.spec.message_id,
            "model": self.spec.model,
            "usage": usage,
            "metrics": metrics,
        })


class RunManager:
    """Starts runs, finds them by stream or thread, and cancels them."""

    def __init__(self, log: EventLog, db: Database, checkpoint_seconds: float) -> None:
        self.log = log
        self.db = db
        self.checkpoint_seconds = checkpoint_seconds
        self._runs: dict[str, StreamRun] = {}
        self._lock = threading.Lock()

    def start(self, spec: RunSpec, provider: Provider) -> StreamRun:
        """Open the stream's log with `start` (and `message_saved`) and start the producer."""
        self.log.open(spec.stream_id)
        self.log.append(spec.stream_id, "start", {
            "stream_id": spec.stream_id, "message_id": spec.message_id,
            "thread_id": spec.thread_id, "model": spec.model})
        if spec.user_message is not None:
            self.log.append(spec.stream_id, "message_saved", {"message": spec.user_message})
        run = StreamRun(spec, provider, self.log, self.db, self.checkpoint_seconds)
        with self._lock:
            self._runs[spec.stream_id] = run
        _spawn_thread(lambda: self._produce(run))
        return run

    def _produce(self, run: StreamRun) -> None:
        try:
            run.run()
        finally:
            with self._lock:
                self._runs.pop(run.spec.stream_id, None)

    def get(self, stream_id: str) -> StreamRun | None:
        with self._lock:
            return self._runs.get(stream_id)

    def for_thread(self, thread_id: str) -> list[StreamRun]:
        with self._lock:
            return [run for run in self._runs.values() if run.spec.thread_id == thread_id]

    def cancel(self, stream_id: str) -> bool:
        """Cancel a run of this process; False if there is none under that id."""
        run = self.get(stream_id)
        if run is None:
            return False
        run.cancel()
        return True

    def shutdown(self, timeout: float) -> None:
        """Cancel every run and wait up to `timeout` seconds for them to store their end."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.cancel()
        deadline = time.monotonic() + timeout
        for run in runs:
            run.finished.wait(max(0.0, deadline - time.monotonic()))


def _spawn_thread(target: Callable[[], None]) -> None:
    # Under gunicorn's gevent worker, threading is monkey-patched: this is a greenlet.
    threading.Thread(target=target, daemon=True, name="sluice-run").start()
