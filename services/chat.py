"""Replies: what the message endpoints do, independent of HTTP (threads themselves are
services/threads.py).

A reply is validated completely before anything is stored; then the user
message and the (empty, streaming) assistant message are stored in one
transaction, and a run is started that fills the assistant message.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .auth import Identity
from .context import Summary, budget_for, latest_summary
from .context.thread import (Preparation, Retrieval, ThreadContext, system_prompt,
                             thread_context)
from .conversation import claim_thread, message_row, pending_tool_calls, store_tool_round
from .documents import has_documents, search, search_scope
from .errors import ApiError
from .fields import answer_limits, model_chain, model_field
from .memory import (extraction_prompt, list_memories, parse_extracted, remember, remembered,
                     store_extracted)
from .providers import ChatRequest, Embedder, ProviderRegistry, ResolvedModel, ToolSpec
from .providers.catalog import AnswerLimits
from .storage import Message, Thread
from .storage.models import new_id, utcnow
from .tools import Toolbox, check_function_names, parse_tool_results, parse_tools
from .streaming import RunSpec, ServerTools, StreamRun, Streaming, to_client
from .streaming.leases import lease_until
from .streaming.records import AnswerRow
from .streaming.subscribe import follow
from .threads import thread_not_found

TITLE_LENGTH = 60
_THREADS, _MESSAGES = Thread.__table__, Message.__table__
# What a reply reads of the earlier messages: enough to rebuild the conversation.
_HISTORY_COLUMNS = tuple(_MESSAGES.c[name] for name in (
    "role", "content", "status", "finish_reason", "tool_calls", "tool_call_id", "position"))


@dataclass(frozen=True)
class ReplyInput:
    content: str | None  # a user message, or None when answering tool calls
    model: str | None
    tools: tuple[ToolSpec, ...]  # the caller's functions
    server_tools: tuple[str, ...]  # tools Sluice runs, by name
    tool_results: Any  # raw; checked against the thread's pending calls
    limits: AnswerLimits = AnswerLimits()  # set once the models are known (for_models)

    def for_models(self, body: dict[str, Any],
                   candidates: Sequence[ResolvedModel]) -> ReplyInput:
        """The reply with the first model's limits; a 400 if a function of the caller's
        is named like a server tool one of the models is offered by the models file
        (Sluice would run its own instead), as when the request names both."""
        offered = {name for model in candidates for name in model.settings.tools}
        check_function_names(self.tools, offered)
        return replace(self, limits=answer_limits(body, candidates[0]))


def parse_reply(body: dict[str, Any], toolbox: Toolbox) -> ReplyInput:
    """The fields of a message request, or a 400 that says what is wrong."""
    content = body.get("content")
    tool_results = body.get("tool_results")
    if tool_results is not None:
        if content is not None:
            raise ApiError(400, "invalid_content",
                           "Send either 'content' or 'tool_results', not both.")
    elif not isinstance(content, str) or not content.strip():
        raise ApiError(400, "invalid_content", "'content' must be a non-empty string.")
    tools, server_tools = parse_tools(body.get("tools"), toolbox.registry)
    return ReplyInput(content=content, model=model_field(body), tools=tools,
                      server_tools=server_tools, tool_results=tool_results)


def _inputs(reply: ReplyInput, earlier: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows this request adds before the answer: the user's message, or tool results."""
    if reply.tool_results is None:
        return [message_row(role="user", content=reply.content, status="complete")]
    results = parse_tool_results(reply.tool_results, pending_tool_calls(earlier))
    return [message_row(role="tool", content=content, tool_call_id=call_id, status="complete")
            for call_id, content in results]


def _store_start(session: Session, connection: Any, thread_id: str,
                 rows: list[dict[str, Any]], changes: dict[str, Any]) -> None:
    """The request's messages and the empty answer, and the thread's new title and time,
    in one transaction; `409 thread_busy` if another message took the thread's next
    position since `rows` were placed."""
    try:
        claim_thread(connection, thread_id, changes)
        connection.execute(insert(_MESSAGES), rows)
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ApiError(409, "thread_busy", "Another message was just sent to this thread.") from exc


def _thread_for_reply(connection: Any, user: Identity, thread_id: str) -> Any:
    thread = connection.execute(select(_THREADS.c.title, _THREADS.c.model, _THREADS.c.system)
                                .where(_THREADS.c.id == thread_id,
                                       _THREADS.c.user_id == user.id)).first()
    if thread is None:
        raise thread_not_found(thread_id)
    return thread


def _earlier(connection: Any, thread_id: str, upto: int | None = None,
             summary: Summary | None = None) -> list[Any]:
    """The thread's messages as history needs them: up to position `upto` if given, and
    after the ones `summary` covers (a long thread is not read whole for every reply;
    a summary never covers the last exchange, whose pending calls a reply answers)."""
    query = select(*_HISTORY_COLUMNS).where(_MESSAGES.c.thread_id == thread_id)
    if upto is not None:
        query = query.where(_MESSAGES.c.position <= upto)
    if summary is not None:
        query = query.where(_MESSAGES.c.position > summary.upto_position)
    return list(connection.execute(query.order_by(_MESSAGES.c.position)).all())


def _check_idle(core: Streaming, thread_id: str) -> None:
    if core.runs.for_thread(thread_id):
        raise ApiError(409, "thread_busy",
                       "An answer is still streaming in this thread; wait for it or cancel it.")


def _request_rows(reply: ReplyInput, earlier: Sequence[Any], thread_id: str,
                  summary: Summary | None = None) -> list[dict[str, Any]]:
    """The request's rows (user message or tool results), placed after `earlier` (and
    after what `summary` covers)."""
    rows = _inputs(reply, earlier)
    position = earlier[-1].position + 1 if earlier else \
        summary.upto_position + 1 if summary is not None else 0
    for offset, row in enumerate(rows):
        row.update(thread_id=thread_id, position=position + offset)
    return rows


def _thread_changes(thread: Any, reply: ReplyInput, now: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {"updated_at": now}
    if thread.title is None and reply.content:
        changes["title"] = " ".join(reply.content.split())[:TITLE_LENGTH]
    return changes


def _context(session: Session, providers: ProviderRegistry, core: Streaming, user: Identity,
             thread: Any, thread_id: str, summary: Summary | None, messages: Sequence[Any],
             model: ResolvedModel, reply: ReplyInput) -> tuple[ThreadContext, Preparation]:
    """The reply's history fitted to `model` (a 400 if it cannot fit, before anything is
    stored), and the run's preparation that summarizes a long thread."""
    settings = core.context
    system = system_prompt(session, user, thread.system, model.id, budget_for(model.settings))
    found = thread_context(thread_id, system, summary, messages, model, reply.tools,
                           settings.calibration)
    summary_model = model_chain(providers, settings.summary_model)[0] \
        if settings.summary_model else model
    return found, Preparation(found, core.db, settings.summary_share, summary_model,
                              _retrieval(core, user, thread_id, messages, providers.embedder))


def _retrieval(core: Streaming, user: Identity, thread_id: str, messages: Sequence[Any],
               embedder: Embedder | None) -> Retrieval | None:
    """How the run searches the user's documents for the last user message: the
    thread's attached ones, or all of theirs ([] when the user has none ready)."""
    query = next((m.content for m in reversed(messages) if m.role == "user"), None)
    if not query:
        return None

    def scope() -> list[str] | None:
        with core.db.transaction() as session:
            attached = search_scope(session, user, thread_id)
            return attached if attached or has_documents(session, user) else []

    def search_documents(text: str, documents: list[str] | None) -> list[Any]:
        with core.db.transaction() as session:
            return search(session, user.id, text, documents, embedder=embedder)
    return Retrieval(scope, search_documents, query)


def _launch(core: Streaming, user: Identity, thread_id: str, found: ThreadContext,
            prepare: Preparation, inputs: list[Message], candidates: tuple[ResolvedModel, ...],
            reply: ReplyInput, assistant: dict[str, Any], on_end: Any, on_finish: Any = None,
            prelude: tuple[Any, ...] = ()) -> StreamRun:
    """Start the producer of a stored, empty assistant message."""
    request = ChatRequest(model="", messages=found.messages, tools=reply.tools)
    message_id = assistant["id"]
    toolbox = core.tools

    def store_round(content: str, calls: list[dict[str, Any]], results: Sequence[Any]) -> None:
        store_tool_round(core.db, thread_id, message_id, content, calls, results)

    tools = ServerTools(registry=toolbox.registry, requested=reply.server_tools,
                        user_id=user.id, thread_id=thread_id,
                        allow_private=toolbox.allow_private, store_round=store_round)
    spec = RunSpec(stream_id=assistant["stream_id"], answer=AnswerRow.message(message_id),
                   thread_id=thread_id, candidates=candidates, request=request,
                   saved_messages=tuple(m.to_dict() for m in inputs), on_finish=on_finish,
                   prelude=prelude, tools=tools, limits=reply.limits, prepare=prepare,
                   measured=prepare.measured, follow_up=_extraction(core, user, found, reply))
    return core.runs.start(spec, on_end=on_end)


def _assistant_row(core: Streaming, thread_id: str, position: int, model: str,
                   stream_id: str | None = None) -> dict[str, Any]:
    return message_row(thread_id=thread_id, position=position, role="assistant",
                        status="streaming", model=model, stream_id=stream_id or new_id("str"),
                        lease_expires_at=lease_until(core.lease_seconds))


def start_reply(session: Session, providers: ProviderRegistry, core: Streaming, user: Identity,
                thread_id: str, body: dict[str, Any]) -> StreamRun:
    """Store the request's messages and an empty assistant message, and start the answer.

    Every answer pays for this before its first token, hundreds at once in a burst,
    so it is plain statements on the request's connection (four reads: the thread, its
    messages, the user's memories and the thread's summary; one insert, one update,
    one commit) rather than ORM units of work. Summaries and document search wait for
    the producer.
    """
    reply = parse_reply(body, core.tools)
    core.ensure_accepting()
    connection = session.connection()
    thread = _thread_for_reply(connection, user, thread_id)
    candidates = model_chain(providers, reply.model or thread.model or providers.default_model)
    user.check_model(candidates[0].id)
    reply = reply.for_models(body, candidates)
    _check_idle(core, thread_id)
    summary = latest_summary(connection, thread_id)
    earlier = _earlier(connection, thread_id, summary=summary)
    rows = _request_rows(reply, earlier, thread_id, summary)
    inputs = [Message(**row) for row in rows]  # never added to the session: plain values
    found, prepare = _context(session, providers, core, user, thread, thread_id, summary,
                              [*earlier, *inputs], candidates[0], reply)
    assistant = _assistant_row(core, thread_id, rows[-1]["position"] + 1, candidates[0].id)
    give_back = core.take_slots(user.id, user.key_id, user.key_max_streams,
                                assistant["stream_id"])
    try:
        _store_start(session, connection, thread_id, [*rows, assistant],
                     _thread_changes(thread, reply, assistant["created_at"]))
    except BaseException:
        give_back()  # nothing was stored: the slot is free again
        raise
    _remember(session, user, reply)
    return _launch(core, user, thread_id, found, prepare, inputs, candidates, reply,
                   assistant, give_back)


def store_request(session: Session, providers: ProviderRegistry, toolbox: Toolbox,
                  user: Identity, thread_id: str, body: dict[str, Any]) -> list[Message]:
    """Check a message request and store its messages (user message or tool results)
    for a job to answer later; nothing is committed, so the job is stored with them."""
    reply = parse_reply(body, toolbox)
    connection = session.connection()
    thread = _thread_for_reply(connection, user, thread_id)
    candidates = model_chain(providers, reply.model or thread.model or providers.default_model)
    user.check_model(candidates[0].id)
    reply.for_models(body, candidates)  # checked now: a job cannot fail on it later
    claim_thread(connection, thread_id, _thread_changes(thread, reply, utcnow()))
    rows = _request_rows(reply, _earlier(connection, thread_id), thread_id)
    connection.execute(insert(_MESSAGES), rows)
    return [Message(**row) for row in rows]


def answer_request(session: Session, providers: ProviderRegistry, core: Streaming,
                   user: Identity, request_message: Message, options: dict[str, Any],
                   stream_id: str, on_end: Any, on_finish: Any,
                   prelude: tuple[Any, ...]) -> tuple[StreamRun, str]:
    """Answer a stored request message (a job's): the history up to it, and a new
    assistant message at the end of the thread; `409 thread_busy` while another answer
    streams there. A user message is remembered and extracted from as a streamed reply's
    is. `options` holds the request's `model`, `tools` and `limits`.
    Returns the run and the assistant message's id."""
    thread_id = request_message.thread_id
    connection = session.connection()
    thread = _thread_for_reply(connection, user, thread_id)
    candidates = model_chain(providers, options.get("model") or thread.model
                             or providers.default_model)
    _check_idle(core, thread_id)
    tools, server_tools = parse_tools(options.get("tools"), core.tools.registry)
    content = request_message.content if request_message.role == "user" else None
    reply = ReplyInput(content=content, model=None, tools=tools, server_tools=server_tools,
                       tool_results=None).for_models(options, candidates)
    summary = latest_summary(connection, thread_id)
    if summary is not None and summary.upto_position >= request_message.position:
        summary = None  # written after this request: its history is the whole thread's
    earlier = _earlier(connection, thread_id, upto=request_message.position, summary=summary)
    found, prepare = _context(session, providers, core, user, thread, thread_id, summary,
                              earlier, candidates[0], reply)
    last = connection.execute(select(_MESSAGES.c.position).where(_MESSAGES.c.thread_id == thread_id)
                              .order_by(_MESSAGES.c.position.desc()).limit(1)).scalar_one()
    assistant = _assistant_row(core, thread_id, last + 1, candidates[0].id, stream_id)
    _store_start(session, connection, thread_id, [assistant],
                 {"updated_at": assistant["created_at"]})
    _remember(session, user, reply)  # once: a job run again finds the fact known
    run = _launch(core, user, thread_id, found, prepare, [], candidates, reply, assistant,
                  on_end, on_finish, prelude)
    return run, assistant["id"]


def _extraction(core: Streaming, user: Identity, found: ThreadContext,
                reply: ReplyInput) -> Any:
    """With SLUICE_MEMORY_EXTRACTION=on, after a complete answer to a user message: ask
    the model for durable facts about the user in the exchange, and keep the new ones."""
    if not core.memory_extraction or not reply.content:
        return None
    message = reply.content

    def extract(complete: Any, answer: str) -> None:
        reply_text = complete(found.model, extraction_prompt(message, answer))
        if not reply_text:
            return
        with core.db.sessions() as session:
            known = [memory.content for memory in list_memories(session, user)]
            store_extracted(session, user, parse_extracted(reply_text, known))
    return extract


def _remember(session: Session, user: Identity, reply: ReplyInput) -> None:
    """A user message that asks Sluice to remember something ("remember that …") keeps
    it among the user's memories, for every later answer (this one has it in the message
    itself). Kept once the request is stored, so a refused request remembers nothing."""
    fact = remembered(reply.content) if reply.content else None
    if fact is not None:
        remember(session, user, fact)


def stream_reply(session: Session, providers: ProviderRegistry, core: Streaming, user: Identity,
                 thread_id: str, body: dict[str, Any]) -> Iterator[bytes]:
    """Start a reply and return its SSE frames from the first event on."""
    if body.get("callback_url") is not None:
        raise ApiError(400, "unsupported_field", "A streamed answer has no callback: POST to "
                       "/api/v1/threads/<id>/messages with 'callback_url' for a webhook job.",
                       param="callback_url")
    run = start_reply(session, providers, core, user, thread_id, body)
    session.close()  # the response may stream for minutes: no connection held meanwhile
    return to_client(follow(core.log, run.spec.stream_id, 0, core.ping_seconds))


def reply_and_wait(session: Session, providers: ProviderRegistry, core: Streaming,
                   user: Identity, thread_id: str,
                   body: dict[str, Any]) -> tuple[Message, Message]:
    """Start a reply, wait until it has ended, and return the stored request message (the
    user's, or the last tool result) and the assistant message."""
    run = start_reply(session, providers, core, user, thread_id, body)
    session.close()  # the answer may take minutes: no connection held while waiting
    run.finished.wait()
    assistant = session.get(Message, run.spec.message_id)
    user = session.get(Message, run.spec.saved_messages[-1]["id"])
    if assistant is None or user is None:
        raise ApiError(404, "thread_not_found", "The thread was deleted while answering.")
    return user, assistant
