"""search_thread: lets a model find what was said earlier in a long conversation, which
may no longer fit in what it is sent.

Only the messages of the thread being answered are searched (the caller checked
that the thread is the user's). Messages are ranked by how many of the query's
words they contain, case-insensitively; among equals the newest comes first.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import or_, select

from ...storage import Message
from ..registry import ToolContext, ToolError, server_tool

EXCERPT = 300
MAX_WORDS = 20
_WORD = re.compile(r"\w+")


@server_tool(
    description="Search this conversation's earlier messages for words; returns the best "
                "matches with an excerpt around the first hit.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 500},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10, "default": 5},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    timeout=5.0, max_output=8000)
def search_thread(context: ToolContext, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread's messages that contain the query's words, best first."""
    if context.thread_id is None:
        raise ToolError("search_thread only works in a chat thread")
    if context.db is None:
        raise ToolError("search_thread has no database here")
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(arguments["query"])))
    words = words[:MAX_WORDS]
    if not words:
        raise ToolError("the query has no words to search for")
    ranked = _ranked(_candidates(context, words), words)
    return [_match(message, words) for message in ranked[:arguments.get("limit", 5)]]


def _candidates(context: ToolContext, words: list[str]) -> list[Any]:
    """The thread's stored messages that may contain a word (the database narrows, and
    the ranking checks again: LIKE's case rules vary by database)."""
    columns = (Message.id, Message.role, Message.position, Message.content)
    patterns = [Message.content.ilike(f"%{_escaped(word)}%", escape="\\") for word in words]
    query = (select(*columns).where(Message.thread_id == context.thread_id)
             .where(Message.status != "streaming").where(or_(*patterns)))
    with context.db.transaction() as session:
        return list(session.execute(query).all())


def _ranked(messages: list[Any], words: list[str]) -> list[Any]:
    """Messages with at least one word, most words first, then the newest."""
    hits = [(_count(message.content.lower(), words), message) for message in messages]
    hits = [(count, message) for count, message in hits if count]
    hits.sort(key=lambda hit: (hit[0], hit[1].position), reverse=True)
    return [message for _count, message in hits]


def _count(folded: str, words: list[str]) -> int:
    return sum(word in folded for word in words)


def _match(message: Any, words: list[str]) -> dict[str, Any]:
    return {"message_id": message.id, "role": message.role, "position": message.position,
            "excerpt": _excerpt(message.content, words)}


def _excerpt(content: str, words: list[str]) -> str:
    """At most EXCERPT characters of `content` around its first hit, whitespace collapsed."""
    text = " ".join(content.split())
    folded = text.lower()
    first = min((folded.find(word) for word in words if word in folded), default=0)
    start = max(0, first - EXCERPT // 3)
    end = start + EXCERPT - 2  # room for the two ellipses
    excerpt = text[start:end]
    return ("…" if start else "") + excerpt + ("…" if end < len(text) else "")


def _escaped(word: str) -> str:
    """`word` as a LIKE pattern's literal text."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
