"""The system-prompt section that tells a model what it knows about the user.

Newest facts first and cut to a token limit, so a user with many memories still gets
the recent ones and the prompt never grows past what the lead's budget allows.
The counting function is passed in: the token counting of the models lives elsewhere.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from ..auth import Identity
from ..storage.memories import Memory
from .store import list_memories

HEADING = ("What you know about the user (facts they asked you to remember or that were "
           "noted from earlier conversations; use them when relevant):")


def _line(content: str) -> str:
    # One line per fact: a fact holding new lines could otherwise pose as prompt structure.
    return "- " + re.sub(r"\s+", " ", content).strip()


def memory_prompt(memories: Sequence[Memory], limit_tokens: int,
                  count: Callable[[str], int]) -> str | None:
    """The user's facts as a system-prompt section, newest first, as many as fit in
    `limit_tokens` by `count`; None when there are none or not even one fits.

    Each line is counted once, with its line break: the parts' counts add up to at least
    the block's (tokens do not span a line break), so the block never passes the limit."""
    newest_first = sorted(memories, key=lambda m: (m.created_at, m.id), reverse=True)
    lines: list[str] = []
    used = count(HEADING)
    for memory in newest_first:
        line = _line(memory.content)
        used += count(line) + 1
        if used > limit_tokens:
            break  # newest first: an older fact never pushes out a newer one
        lines.append(line)
    return "\n".join([HEADING, *lines]) if lines else None


def user_memory_prompt(session: Session, user: Identity, limit_tokens: int,
                       count: Callable[[str], int]) -> str | None:
    """`memory_prompt` of `user`'s own memories: what the answer pipeline calls. A fact's
    line takes at least 2 tokens (itself and its line break), so no more rows than could
    fit are read."""
    return memory_prompt(list_memories(session, user, limit=limit_tokens // 2 + 1),
                         limit_tokens, count)
