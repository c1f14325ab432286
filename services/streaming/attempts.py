"""Getting an answer started: how long to wait before trying a model again, and
how to stream from a model that can only answer in one piece."""
from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator

from ..providers.base import (ChatRequest, Completion, Finish, Provider, ProviderEvent,
                              ProviderStream, ReasoningDelta, TextDelta)
from ..providers.calls import calling, current_call
from ..providers.catalog import RetryPolicy
from ..providers.errors import ProviderError, ProviderStatusError


_jitter = random.Random()


def backoff_delay(policy: RetryPolicy, attempt: int, error: ProviderError) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to stop trying this model.

    Exponential backoff with full jitter; a Retry-After from the provider is
    honoured as a minimum, and one longer than the cap means: try another model.
    """
    if not error.retryable or attempt + 1 >= policy.attempts:
        return None
    delay = _jitter.uniform(0, min(policy.max_seconds, policy.base_seconds * 2 ** attempt))
    retry_after = error.retry_after if isinstance(error, ProviderStatusError) else None
    if retry_after is not None:
        if retry_after > policy.max_seconds:
            return None
        delay = max(delay, retry_after)
    return delay


def completion_events(completion: Completion) -> Iterator[ProviderEvent]:
    """A whole answer as the events a stream of it would have given."""
    if completion.reasoning:
        yield ReasoningDelta(completion.reasoning)
    if completion.text:
        yield TextDelta(completion.text)
    yield from completion.tool_calls
    yield completion.usage
    yield Finish(completion.finish_reason)


def stream_from_completion(provider: Provider, request: ChatRequest) -> ProviderStream:
    """Serve a non-streaming call as a stream that can still be interrupted.

    The call runs in its own thread (a greenlet under gevent); interrupting stops
    waiting for it at once. The abandoned call's connection belongs to the caller's
    current `UpstreamCall`, so interrupting that cuts it too; without one it ends by
    itself, bounded by its timeouts.
    """
    # Unbounded, so neither the call nor an interrupt ever blocks on a full queue.
    results: queue.Queue[Completion | ProviderError | None] = queue.Queue()
    upstream_call = current_call()  # thread-local: carried over by hand

    def call() -> None:
        try:
            with calling(upstream_call):
                results.put(provider.complete(request))
        except ProviderError as exc:
            results.put(exc)

    threading.Thread(target=call, daemon=True, name="sluice-complete").start()

    def events() -> Iterator[ProviderEvent]:
        result = results.get()
        if result is None:  # interrupted
            return
        if isinstance(result, ProviderError):
            raise result
        yield from completion_events(result)

    return ProviderStream(events(), close=lambda: None, interrupt=lambda: results.put(None))
