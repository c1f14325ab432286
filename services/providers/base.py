"""The provider interface: what every model adapter takes and gives.

A provider turns a `ChatRequest` into either a whole `Completion` or a
`ProviderStream` of typed events. Every quirk of a wire format stays inside its
adapter; failures are raised as the exceptions in `errors.py`.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str


@dataclass(frozen=True)
class ChatRequest:
    model: str  # the provider's own model name, e.g. "gpt-4o-mini"
    messages: tuple[ChatMessage, ...]
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the complete JSON string


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None
    output_tokens: int | None


@dataclass(frozen=True)
class Finish:
    reason: str  # "stop" | "length" | "tool_calls" | "error"


ProviderEvent = Union[TextDelta, ReasoningDelta, ToolCall, Usage, Finish]


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage = Usage(None, None)
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)


class ProviderStream:
    """The events of one streaming call, and a way to stop it from another thread.

    `close()` may be called while another thread or greenlet is blocked reading:
    it closes the upstream connection, so even a silent upstream is cut.
    """

    def __init__(self, events: Iterator[ProviderEvent], close: Callable[[], None]) -> None:
        self._events = events
        self._close = close
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[ProviderEvent]:
        try:
            yield from self._events
        except Exception:
            # A read interrupted by close() fails in transport-specific ways
            # (EOF mid-chunk, a socket already gone): the stream simply ended.
            if not self.closed:
                raise

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._close()


class Provider(ABC):
    """A model provider. `name` is the part before the slash in `provider/model`."""

    name: str

    @abstractmethod
    def complete(self, request: ChatRequest) -> Completion:
        """Answer `request` in one non-streaming call."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> ProviderStream:
        """Start a streaming call; raises a `ProviderError` if it cannot start."""

    def check_model(self, model: str) -> None:
        """Raise `UnknownModelError` if this provider cannot serve `model` at all."""

    def models(self) -> list[dict[str, Any]]:
        """The models to list in `GET /api/v1/models` (those known without a network call)."""
        return []
