"""What the streaming core tells an observer about its streams, as plain values.

The core measures where only it can (a run's first visible output and its end,
inside the producer, not when a view returns) and reports here; `services.metrics`
records it. The core knows nothing of Prometheus, and without an observer
(`NO_OBSERVER`) nothing is recorded.
"""
from __future__ import annotations

from typing import Protocol


class StreamObserver(Protocol):
    """Called from producers (threads or greenlets) and requests: must be quick and
    must never raise."""

    def stream_opened(self) -> None:
        """A producer has started (it ends with exactly one `stream_closed`)."""

    def stream_closed(self) -> None:
        """A producer has ended, however it ended."""

    def first_output(self, model_id: str, seconds: float) -> None:
        """The answer's first visible output, `seconds` after its run started."""

    def attempt_failed(self, model_id: str, code: str) -> None:
        """One call to a model failed with this `ProviderError` code (retried or not)."""

    def answer_ended(self, model_id: str, status: str, seconds: float,
                     input_tokens: int | None, output_tokens: int | None) -> None:
        """The answer has ended with `status`, as stored; usage as the provider reported it."""

    def resumed(self) -> None:
        """A client asked for a stream's events by id (a reconnect or a late reader)."""

    def cancel_requested(self) -> None:
        """A client asked to cancel a stream."""


class _NoObserver:
    """Records nothing: for a core built without metrics."""

    def stream_opened(self) -> None:
        pass

    def stream_closed(self) -> None:
        pass

    def first_output(self, model_id: str, seconds: float) -> None:
        pass

    def attempt_failed(self, model_id: str, code: str) -> None:
        pass

    def answer_ended(self, model_id: str, status: str, seconds: float,
                     input_tokens: int | None, output_tokens: int | None) -> None:
        pass

    def resumed(self) -> None:
        pass

    def cancel_requested(self) -> None:
        pass


NO_OBSERVER: StreamObserver = _NoObserver()
