"""Threads: create, list, read, change and delete a user's threads, and list their
messages (replies are services/chat.py). Every lookup is scoped to the user: another
user's thread is not found, exactly like none."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .auth import Identity
from .documents import attach_documents, parse_document_ids
from .errors import ApiError
from .fields import checked_model, optional_text
from .providers import ProviderRegistry
from .storage import Message, Thread
from .storage.owned import owned
from .streaming import Streaming


def create_thread(session: Session, providers: ProviderRegistry, user: Identity,
                  body: dict[str, Any]) -> Thread:
    """A new, empty thread; its model (if given) must be one this server can serve."""
    title = optional_text(body, "title", 200)
    model = checked_model(body, providers, user)
    system = optional_text(body, "system")
    attached = parse_document_ids(body)
    thread = Thread(user_id=user.id, title=title, model=model, system=system)
    if attached:
        attach_documents(session, user, thread, attached)
    session.add(thread)
    session.commit()
    return thread


def list_threads(session: Session, user: Identity) -> list[Thread]:
    # A list shows each thread's summary and attachments: loaded for all at once.
    query = owned(select(Thread), user).options(selectinload(Thread.summary),
                                                selectinload(Thread.attachments))
    return list(session.scalars(query.order_by(Thread.updated_at.desc(),
                                               Thread.created_at.desc())))


def thread_not_found(thread_id: str) -> ApiError:
    return ApiError(404, "thread_not_found", f"There is no thread {thread_id!r}.")


def get_thread(session: Session, user: Identity, thread_id: str) -> Thread:
    """The thread, if it is `user`'s: another user's is not found, exactly like none."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.user_id != user.id:
        raise thread_not_found(thread_id)
    return thread


EDITABLE = ("title", "model", "system", "documents")


def update_thread(session: Session, providers: ProviderRegistry, user: Identity,
                  thread_id: str, body: dict[str, Any]) -> Thread:
    """Change the fields the body names: `title` (never empty), `model` and `system` (null
    clears them), `documents` (the attached documents; [] or null for none)."""
    thread = get_thread(session, user, thread_id)
    if not any(name in body for name in EDITABLE):
        raise ApiError(400, "invalid_field", "Send at least one of "
                       + ", ".join(f"'{name}'" for name in EDITABLE) + " to change.")
    if "title" in body:
        title = optional_text(body, "title", 200)
        if title is None or not title.strip():
            raise ApiError(400, "invalid_field", "'title' must be a non-empty string.")
        thread.title = title.strip()
    if "model" in body:
        thread.model = checked_model(body, providers, user)
    if "system" in body:
        thread.system = optional_text(body, "system")
    attached = parse_document_ids(body)
    if attached is not None:
        attach_documents(session, user, thread, attached)
    session.commit()
    return thread


def delete_thread(session: Session, core: Streaming, user: Identity, thread_id: str) -> None:
    """Delete a thread and its messages, stopping any answer still streaming into it."""
    thread = get_thread(session, user, thread_id)
    for run in core.runs.for_thread(thread_id):
        run.cancel()
        run.finished.wait(5)
    session.delete(thread)
    session.commit()


def list_messages(session: Session, user: Identity, thread_id: str) -> list[Message]:
    return list(get_thread(session, user, thread_id).messages)
