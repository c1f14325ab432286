"""The provider interface: what every model adapter takes and gives.

A provider turns a `ChatRequest` into either a whole `Completion` or a
`ProviderStream` of typed events. Every quirk of a wire format stays inside its
adapter; failures are raised as the exceptions in `errors.py`.
"""
from __future__ import annotations

import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class ToolCall:
    """A call the model asks for; also an event of a stream, emitted once complete."""

    id: str
    name: str
    arguments: str  # the complete JSON string


def new_call_id() -> str:
    """An id for a tool call its provider sent without one.

    Ids pair each call with its result across the whole thread, which is sent again
    with every request (and may move to another provider), so a per-answer counter
    (`call_0`, `call_1`) would pair a later round's results with an earlier round's calls.
    """
    return f"call_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call (OpenAI-style definition, provider-neutral)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object",
                                                                 "properties": {}})


@dataclass(frozen=True)
class ChatMessage:
    """One turn of history.

    `role` is "system", "user", "assistant" or "tool". An assistant turn may carry
    `tool_calls`; a "tool" turn answers the call `tool_call_id` (named `name`)
    with `content`.
    """

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class ChatRequest:
    model: str  # the provider's own model name, e.g. "gpt-4o-mini"
    messages: tuple[ChatMessage, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    tools: tuple[ToolSpec, ...] = ()
    # The answer must be JSON matching this schema (an operation's output). The prompt
    # says so too; the demo model answers with such JSON.
    json_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None
    output_tokens: int | None


@dataclass(frozen=True)
class Finish:
    reason: str  # normalised: "stop" | "length" | "tool_calls"


ProviderEvent = Union[TextDelta, ReasoningDelta, ToolCall, Usage, Finish]


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage = Usage(None, None)
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)


class ProviderStream:
    """The events of one streaming call, and how to stop it.

    `interrupt()` is for any other thread or greenlet: it wakes a reader blocked
    on a silent upstream (by shutting the connection down) and iteration ends.
    `close()` is for the reader itself, when it is done: it releases the connection.
    """

    def __init__(self, events: Iterator[ProviderEvent], close: Callable[[], None],
                 interrupt: Callable[[], None] | None = None) -> None:
        self._events = events
        self._close = close
        self._interrupt = interrupt or close
        self._interrupted = threading.Event()

    def __iter__(self) -> Iterator[ProviderEvent]:
        try:
            yield from self._events
        except Exception:
            # A read cut by interrupt() fails in transport-specific ways (EOF
            # mid-chunk, a socket already gone): the stream simply ended.
            if not self.interrupted:
                raise

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def interrupt(self) -> None:
        if not self._interrupted.is_set():
            self._interrupted.set()
            self._interrupt()

    def close(self) -> None:
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
