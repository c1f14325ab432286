"""What of a conversation fits a model's context window, and what must give way.

The window is the model's (models file `context_window`), less what is kept for the
answer (`output_reserve`). The system prompt, any system-side notes (a summary) and
the new turns always go; when the rest does not fit, old tool results are trimmed
first (they are the bulkiest and the least read again), then the oldest exchanges are
left out whole, so that a tool call never travels without its result and the
conversation still opens with a user turn. What was left out is for the summarizer.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..errors import ApiError
from ..providers import ChatMessage
from ..providers.catalog import ModelSettings
from .tokens import REPLY_PRIMING, Calibration, message_tokens, scale

# Per provider family: (context window, output reserve) in tokens, when the models
# file sets none. Current models of each family have at least this window; Ollama
# serves many models with its own small default context, so it is small too.
FAMILY_WINDOWS: dict[str, tuple[int, int]] = {
    "openai": (128_000, 4_096),
    "openai-responses": (128_000, 4_096),
    "anthropic": (200_000, 8_192),
    "ollama": (8_192, 1_024),
    "demo": (8_192, 1_024),
}
UNKNOWN_FAMILY_WINDOW = (8_192, 1_024)


@dataclass(frozen=True)
class Budget:
    """A model's context window and the part of it kept for the answer."""

    window: int
    reserve: int

    @property
    def available(self) -> int:
        """Tokens the request's input may take."""
        return self.window - self.reserve


def budget_for(settings: ModelSettings) -> Budget:
    """The budget of a model: its models-file entry, else its family's defaults."""
    window, reserve = FAMILY_WINDOWS.get(settings.provider, UNKNOWN_FAMILY_WINDOW)
    window = settings.context_window or window
    reserve = settings.output_reserve or settings.max_tokens or reserve
    return Budget(window, min(reserve, window - 1))


class ContextTooLong(ApiError):
    """The parts of a request that cannot be left out exceed the window by themselves.

    An `ApiError`, so raised before a stream starts it is a `400 context_too_long`.
    """

    def __init__(self, needed: int, budget: Budget) -> None:
        super().__init__(400, "context_too_long", (
            f"This request needs {needed} tokens for the system prompt and the new "
            f"message alone, but the model's context window is {budget.window} tokens, "
            f"{budget.reserve} of which are kept for the answer."))
        self.needed = needed
        self.budget = budget


@dataclass(frozen=True)
class Fitted:
    """What to send, and what had to give way to fit."""

    messages: tuple[ChatMessage, ...]  # the system prompt, kept turns, new turns
    dropped: tuple[ChatMessage, ...]  # the oldest turns left out, in order
    trimmed: int  # tool results replaced by a placeholder
    counted: int  # tokens of `messages`
    full: int  # tokens the whole history would have taken
    budget: Budget


TRIMMED = "[tool result trimmed: {} characters]"


def exchanges(turns: Sequence[ChatMessage]) -> list[list[ChatMessage]]:
    """Turns grouped from each user turn up to the next: the units left out whole."""
    groups: list[list[ChatMessage]] = []
    for turn in turns:
        if turn.role == "user" or not groups:
            groups.append([])
        groups[-1].append(turn)
    return groups


def split_last_exchange(turns: Sequence[ChatMessage]) -> tuple[tuple[ChatMessage, ...],
                                                               tuple[ChatMessage, ...]]:
    """The turns before the last user turn, and the last exchange: the new turns of
    a request, whether it brought a user message or results of the caller's tools."""
    users = [index for index, turn in enumerate(turns) if turn.role == "user"]
    cut = users[-1] if users else len(turns)
    return tuple(turns[:cut]), tuple(turns[cut:])


def _trim(turn: ChatMessage) -> ChatMessage:
    placeholder = TRIMMED.format(len(turn.content))
    return replace(turn, content=placeholder) if len(placeholder) < len(turn.content) else turn


def fit(system: str | None, turns: Sequence[ChatMessage], new_turns: Sequence[ChatMessage],
        budget: Budget, model_id: str, calibration: Calibration | None = None,
        extra: int = 0) -> Fitted:
    """Fit a request into `budget`: `turns` are the earlier history (system-side notes
    among them are always kept), `new_turns` this request's, `extra` the tokens of
    anything else it sends (tool definitions, retrieved passages)."""
    factor = scale(model_id, calibration)
    limit = budget.available / factor - extra / factor - REPLY_PRIMING  # in cl100k tokens
    pinned = ([ChatMessage("system", system)] if system else []) + [
        turn for turn in turns if turn.role == "system"]
    groups = exchanges([turn for turn in turns if turn.role != "system"])
    base = sum(message_tokens(turn) for turn in [*pinned, *new_turns])
    if base > limit:
        raise ContextTooLong(math.ceil((base + REPLY_PRIMING) * factor) + extra, budget)
    sizes = [[message_tokens(turn) for turn in group] for group in groups]
    total = base + sum(map(sum, sizes))
    full = total
    trimmed = 0
    # Tool results of every exchange but the last, oldest first, while over the limit.
    for group, group_sizes in zip(groups[:-1], sizes[:-1]):
        for index, turn in enumerate(group):
            if total <= limit:
                break
            if turn.role == "tool" and (short := _trim(turn)) is not turn:
                group[index], size = short, message_tokens(short)
                total -= group_sizes[index] - size
                group_sizes[index] = size
                trimmed += 1
    dropped: list[ChatMessage] = []
    while total > limit and groups:
        dropped += groups.pop(0)
        total -= sum(sizes.pop(0))
    kept = [turn for group in groups for turn in group]
    counted = math.ceil((total + REPLY_PRIMING) * factor) + extra
    return Fitted(messages=(*pinned, *kept, *new_turns), dropped=tuple(dropped),
                  trimmed=trimmed, counted=counted,
                  full=math.ceil((full + REPLY_PRIMING) * factor) + extra, budget=budget)
