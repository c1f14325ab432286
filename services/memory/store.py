"""Reading and changing a user's memories. Every query starts from `owned`, so a memory
of another user is never found: it is a 404, exactly like one that does not exist."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..auth import Identity
from ..errors import ApiError
from ..storage.memories import Memory
from ..storage.models import new_id
from ..storage.owned import owned
from ..storage.safe_text import storable

MAX_CONTENT = 1000  # characters: a fact, not a document (documents have their own area)
MAX_MEMORIES = 500  # per user: keeps the list readable and extraction from growing forever



def _content(body: dict[str, Any]) -> str:
    """The `content` of a request: a non-blank string of at most MAX_CONTENT characters,
    stored without surrounding blanks."""
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ApiError(400, "invalid_content", "'content' must be a non-empty string, such "
                       'as "I prefer metric units".', param="content")
    content = content.strip()
    if len(content) > MAX_CONTENT:
        raise ApiError(400, "invalid_content", f"'content' is longer than {MAX_CONTENT} "
                       "characters; a memory is one short fact.", param="content")
    return content


def _count(session: Session, user: Identity) -> int:
    return session.scalar(owned(select(func.count()).select_from(Memory), user)) or 0


def _add(session: Session, user: Identity, content: str, source: str) -> Memory:
    memory = Memory(id=new_id("mem"), user_id=user.id, content=content, source=source)
    session.add(memory)
    return memory


def list_memories(session: Session, user: Identity, limit: int | None = None) -> list[Memory]:
    """The user's memories, newest first (the order the prompt block keeps too); the
    newest `limit` of them, if given."""
    query = owned(select(Memory), user).order_by(Memory.created_at.desc(), Memory.id.desc())
    return list(session.scalars(query.limit(limit)))


def get_memory(session: Session, user: Identity, memory_id: str) -> Memory:
    """The memory, if it is `user`'s; another user's is not found, exactly like none."""
    memory = session.scalars(owned(select(Memory), user).where(Memory.id == memory_id)).first()
    if memory is None:
        raise ApiError(404, "memory_not_found", f"There is no memory {memory_id!r}.")
    return memory


def create_memory(session: Session, user: Identity, body: dict[str, Any]) -> Memory:
    """Store the fact a request's `content` states, as the user's own."""
    content = _content(body)
    if _count(session, user) >= MAX_MEMORIES:
        raise ApiError(409, "too_many_memories", f"You have {MAX_MEMORIES} memories, the most "
                       "kept; delete some before adding more.")
    memory = _add(session, user, content, "user")
    session.commit()
    return memory


def update_memory(session: Session, user: Identity, memory_id: str,
                  body: dict[str, Any]) -> Memory:
    """Replace a memory's text; its source stays, so an edited extracted fact still says
    where it came from."""
    memory = get_memory(session, user, memory_id)
    memory.content = _content(body)
    session.commit()
    return memory


def delete_memory(session: Session, user: Identity, memory_id: str) -> None:
    """Forget a memory for good: nothing keeps a copy."""
    session.delete(get_memory(session, user, memory_id))
    session.commit()


def _known(session: Session, user: Identity) -> set[str]:
    return {content.casefold() for content in session.scalars(owned(select(Memory.content), user))}


def remember(session: Session, user: Identity, fact: str) -> Memory | None:
    """Keep a fact the user asked to keep ("remember that …", see `remembered`); one the
    user already has (ignoring case) is not stored twice. None if nothing was stored:
    a repeat, or the user is at MAX_MEMORIES."""
    fact = storable(fact.strip())[:MAX_CONTENT]
    memory = None
    if fact and fact.casefold() not in _known(session, user) \
            and _count(session, user) < MAX_MEMORIES:
        memory = _add(session, user, fact, "user")
    session.commit()  # a repeat too: its reads end here, and with them the transaction
    return memory


def store_extracted(session: Session, user: Identity, facts: Iterable[str]) -> list[Memory]:
    """Keep the facts a model extracted (`parse_extracted`), skipping ones already known
    and stopping at MAX_MEMORIES; the stored ones, newest last."""
    known, room = _known(session, user), MAX_MEMORIES - _count(session, user)
    stored: list[Memory] = []
    for fact in facts:
        fact = storable(fact.strip())[:MAX_CONTENT]
        if len(stored) >= room or not fact or fact.casefold() in known:
            continue
        known.add(fact.casefold())
        stored.append(_add(session, user, fact, "extracted"))
    if stored:
        session.commit()
    return stored
