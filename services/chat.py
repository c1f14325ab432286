"""Threads and replies: what the chat endpoints do, independent of HTTP.

A reply is validated completely before anything is stored; then the user
message and the (empty, streaming) assistant message are stored in one
transaction, and a run is started that fills the assistant message.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import ApiError
from .providers import (ChatMessage, ChatRequest, Provider, ProviderRegistry,
                        UnknownModelError)
from .storage import Message, Thread
from .storage.models import new_id, utcnow
from .streaming import RunSpec, StreamRun, Streaming
from .streaming.subscribe import follow

TITLE_LENGTH = 60
# Earlier assistant turns that ended like this are still part of the conversation.
_HISTORY_STATUSES = ("complete", "cancelled", "interrupted")


def _optional_text(body: dict[str, Any], field: str, limit: int | None = None) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{field!r} must be a string.")
    if limit is not None and len(value) > limit:
        raise ApiError(400, "invalid_field", f"{field!r} is longer than {limit} characters.")
    return value


def _check_model(providers: ProviderRegistry, model: str) -> Provider:
    try:
        provider, _ = providers.resolve(model)
    except UnknownModelError as exc:
        raise ApiError(400, "unknown_model", exc.message) from exc
    return provider


def create_thread(session: Session, providers: ProviderRegistry, body: dict[str, Any]) -> Thread:
    """A new, empty thread; its model (if given) must be one this server can serve."""
    title = _optional_text(body, "title", 200)
    model = _optional_text(body, "model", 200)
    system = _optional_text(body, "system")
    if model is not None:
        _check_model(providers, model)
    thread = Thread(title=title, model=model, system=system)
    session.add(thread)
    session.commit()
    return thread


def list_threads(session: Session) -> list[Thread]:
    return list(session.scalars(select(Thread).order_by(Thread.updated_at.desc(),
                                                        Thread.created_at.desc())))


def get_thread(session: Session, thread_id: str) -> Thread:
    thread = session.get(Thread, thread_id)
    if thread is None:
        raise ApiError(404, "thread_not_found", f"There is no thread {thread_id!r}.")
    return thread


def delete_thread(session: Session, core: Streaming, thread_id: str) -> None:
    """Delete a thread and its messages, stopping any answer still streaming into it."""
    thread = get_thread(session, thread_id)
    for run in core.runs.for_thread(thread_id):
        run.cancel()
        run.finished.wait(5)
    session.delete(thread)
    session.commit()


def list_messages(session: Session, thread_id: str) -> list[Message]:
    return list(get_thread(session, thread_id).messages)


@dataclass(frozen=True)
class ReplyInput:
    content: str
    model: str | None


def parse_reply(body: dict[str, Any]) -> ReplyInput:
    """The fields of a message request, or a 400 that says what is wrong."""
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ApiError(400, "invalid_content", "'content' must be a non-empty string.")
    if body.get("callback_url") is not None:
        raise ApiError(400, "unsupported_field",
                       "'callback_url' (webhook delivery) is not available on this server yet.")
    if body.get("tools"):
        raise ApiError(400, "unsupported_field", "'tools' are not available on this server yet.")
    return ReplyInput(content=content, model=_optional_text(body, "model", 200))


def _history(thread: Thread, new_content: str) -> tuple[ChatMessage, ...]:
    messages = [ChatMessage("system", thread.system)] if thread.system else []
    for message in thread.messages:
        if message.content and (message.role == "user" or message.status in _HISTORY_STATUSES):
            messages.append(ChatMessage(message.role, message.content))
    messages.append(ChatMessage("user", new_content))
    return tuple(messages)


def start_reply(session: Session, providers: ProviderRegistry, core: Streaming,
                thread_id: str, body: dict[str, Any]) -> StreamRun:
    """Store the user's message and an empty assistant message, and start the answer."""
    reply = parse_reply(body)
    thread = get_thread(session, thread_id)
    model = reply.model or thread.model or providers.default_model
    provider = _check_model(providers, model)
    if core.runs.for_thread(thread_id):
        raise ApiError(409, "thread_busy",
                       "An answer is still streaming in this thread; wait for it or cancel it.")
    request = ChatRequest(model=model.partition("/")[2],
                          messages=_history(thread, reply.content))
    position = session.scalar(
        select(func.coalesce(func.max(Message.position), -1)).where(Message.thread_id == thread_id))
    user = Message(thread_id=thread_id, position=position + 1, role="user",
                   content=reply.content, status="complete")
    assistant = Message(thread_id=thread_id, position=position + 2, role="assistant",
                        content="", status="streaming", model=model, stream_id=new_id("str"))
    if thread.title is None:
        thread.title = " ".join(reply.content.split())[:TITLE_LENGTH]
    thread.updated_at = utcnow()
    session.add_all([user, assistant])
    try:
        session.commit()
    except IntegrityError as exc:  # another reply on this thread won the race
        session.rollback()
        raise ApiError(409, "thread_busy", "Another message was just sent to this thread.") from exc
    spec = RunSpec(stream_id=assistant.stream_id, message_id=assistant.id, thread_id=thread_id,
                   model=model, request=request, user_message=user.to_dict())
    return core.runs.start(spec, provider)


def stream_reply(session: Session, providers: ProviderRegistry, core: Streaming,
                 thread_id: str, body: dict[str, Any]) -> Iterator[bytes]:
    """Start a reply and return its SSE frames from the first event on."""
    run = start_reply(session, providers, core, thread_id, body)
    return follow(core.log, run.spec.stream_id, 0, core.ping_seconds)


def reply_and_wait(session: Session, providers: ProviderRegistry, core: Streaming,
                   thread_id: str, body: dict[str, Any]) -> tuple[Message, Message]:
    """Start a reply, wait until it has ended, and return the stored user and assistant messages."""
    run = start_reply(session, providers, core, thread_id, body)
    run.finished.wait()
    session.expire_all()
    assistant = session.get(Message, run.spec.message_id)
    user = session.get(Message, run.spec.user_message["id"])
    if assistant is None or user is None:
        raise ApiError(404, "thread_not_found", "The thread was deleted while answering.")
    return user, assistant
