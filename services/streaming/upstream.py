"""The provider call a run is making, reachable from any thread.

Cancel, shutdown and the deadlines come from other threads (greenlets under gevent)
while the producer is blocked in the call: connecting, waiting for the response
headers, or reading the body. The call's connection is registered before the
request is sent (`UpstreamCall`) and its stream once it exists, so either can be cut
in every phase; a cut that comes before they exist is applied as soon as they do.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from ..providers import ChatRequest, ResolvedModel
from ..providers.base import ProviderStream
from ..providers.calls import UpstreamCall, calling
from .attempts import stream_from_completion


class Upstream:
    """One run's current provider call: open it, cut it from anywhere, release it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stream: ProviderStream | None = None
        self._call: UpstreamCall | None = None

    def open(self, model: ResolvedModel, request: ChatRequest,
             stopped: Callable[[], bool]) -> ProviderStream:
        """Call `model` with `request` (already addressed to it); `stopped` says whether a
        cut came before the call could be reached, so it is cut at once."""
        call = UpstreamCall()
        with self._lock:
            self._call = call
        if stopped():
            call.interrupt()
        with calling(call):
            stream = (model.provider.stream(request) if model.settings.streaming
                      else stream_from_completion(model.provider, request))
        with self._lock:
            self._stream = stream
        if stopped():
            stream.interrupt()
        return stream

    def interrupt(self) -> None:
        """Cut the current call, whatever phase it is in (from any thread)."""
        with self._lock:
            stream, call = self._stream, self._call
        if stream is not None:
            stream.interrupt()
        if call is not None:
            call.interrupt()

    def release(self, stream: ProviderStream | None) -> None:
        """The producer is done with the call: forget it and close its stream."""
        with self._lock:
            self._stream, self._call = None, None
        if stream is not None:
            stream.close()
