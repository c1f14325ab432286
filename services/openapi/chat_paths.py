"""Threads, messages, streams and models: `/api/v1/threads…`, `/api/v1/streams…`,
`/api/v1/models` (blueprints/chat.py, streams.py, models.py)."""
from __future__ import annotations

from typing import Any

from .builders import (READ_SECURITY, WRITE_SECURITY, closed, errors, json_body, json_response,
                       operation, path_id, ref, with_links)
from .events import RESUME_PARAMETERS, event_stream
from .job_paths import IDEMPOTENCY_KEY, JOB_CODES, ONE_JOB, job_answers
from .schemas import MESSAGE_STATUSES

THREAD_ID = path_id("thread_id", "A thread's id (`thr_…`).")
STREAM_ID = path_id("stream_id", "A stream's id (`str_…`), from `start` or a message.")
THREAD_NOT_FOUND = ("thread_not_found", "not_found")
MODEL_CODES = ("invalid_field", "unknown_model")
# What refuses a new answer before anything is stored.
REPLY_CODES = {400: ("invalid_content", "invalid_tools", "unknown_tool", "unsupported_field",
                     "invalid_limits", *MODEL_CODES),
               403: ("model_not_allowed",),
               404: THREAD_NOT_FOUND,
               409: ("thread_busy", "no_pending_tool_calls"),
               429: ("too_many_streams",),
               503: ("shutting_down", "unavailable")}


def _one_thread(summary: str) -> dict[str, Any]:
    return json_response(summary, closed({"thread": ref("Thread")}))


def _threads() -> dict[str, Any]:
    return {"post": operation(
        "createThread", "Start a thread", "threads", {"201": with_links(
            _one_thread("The new, empty thread."), "thread_id", "/thread/id", "getThread",
            "renameThread", "listMessages", "sendMessage", "streamMessage", "deleteThread")},
        errors(reads_body=True, changes=True, own={400: (*MODEL_CODES, "document_failed"),
                                                   403: ("model_not_allowed",),
                                                   404: ("document_not_found",)}),
        body=json_body(ref("ThreadFields"), required=False), security=WRITE_SECURITY,
        description="Every field is optional; a model must be one this server serves."),
        "get": operation(
        "listThreads", "List your threads", "threads",
        {"200": json_response("Newest first.", closed({"threads": {
            "type": "array", "items": ref("Thread")}}))},
        errors(), security=READ_SECURITY)}


def _thread() -> dict[str, Any]:
    return {"parameters": [THREAD_ID], "get": operation(
        "getThread", "One thread", "threads", {"200": _one_thread("The thread.")},
        errors(own={404: THREAD_NOT_FOUND}), security=READ_SECURITY),
        "patch": operation(
        "renameThread", "Change a thread", "threads", {"200": _one_thread("The changed thread.")},
        errors(reads_body=True, changes=True, own={
            400: ("invalid_field", "unknown_model", "document_failed"),
            403: ("model_not_allowed",), 404: (*THREAD_NOT_FOUND, "document_not_found")}),
        body=json_body({"type": "object", "minProperties": 1, "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
            "model": {"type": ["string", "null"], "pattern": "\\S"},
            "system": {"type": ["string", "null"]},
            "documents": {"type": ["array", "null"], "maxItems": 100,
                          "items": {"type": "string", "minLength": 1}}}}),
        security=WRITE_SECURITY, description="Changes the fields the body names (`title`, "
                                             "`model`, `system`, `documents`); a title is "
                                             "stored without surrounding blanks, null clears "
                                             "`model` and `system`."),
        "delete": operation(
        "deleteThread", "Delete a thread and its messages", "threads",
        {"204": {"description": "Deleted; a running answer in it was stopped first."}},
        errors(changes=True, own={404: THREAD_NOT_FOUND}), security=WRITE_SECURITY)}


def _messages() -> dict[str, Any]:
    listed = closed({"messages": {"type": "array", "items": ref("Message")}})
    replied = closed({"message": ref("Message"), "response": ref("Message")})
    failed = closed({"error": ref("MessageError"), "message": ref("Message"),
                     "response": ref("Message")})
    job = job_answers("the answer")
    return {"parameters": [THREAD_ID], "get": operation(
        "listMessages", "A thread's messages", "messages",
        {"200": json_response("Oldest first; an answer still streaming holds its text so far.",
                              listed)},
        errors(own={404: THREAD_NOT_FOUND}), security=READ_SECURITY),
        "post": operation(
        "sendMessage", "Send a message and wait for the answer", "messages",
        {"200": with_links(json_response(
            "The stored request message (yours, or the last tool result) and the finished "
            "answer, `complete`, `cancelled` or `interrupted`. " + job["200"],
            {"anyOf": [replied, ONE_JOB]}),
            "stream_id", "/response/stream_id", "streamEvents", "cancelStream"),
         "202": job["202"],
         "502": json_response("The model failed; both messages are stored, the answer with "
                              "status `error` and the text that did arrive.", failed)},
        errors(reads_body=True, changes=True, own={
            **REPLY_CODES, 400: (*REPLY_CODES[400], *JOB_CODES[400]),
            409: (*REPLY_CODES[409], *JOB_CODES[409])}),
        body=json_body(ref("Reply")), parameters=[IDEMPOTENCY_KEY], security=WRITE_SECURITY)}


def _message_stream() -> dict[str, Any]:
    return {"parameters": [THREAD_ID], "post": operation(
        "streamMessage", "Send a message and stream the answer", "messages",
        {"200": event_stream("The answer's events from `start` to `done`. A request refused "
                             "before the stream starts gets a JSON error instead.")},
        errors(reads_body=True, changes=True, own=REPLY_CODES),
        body=json_body(ref("Reply")), security=WRITE_SECURITY)}


def _stream_events() -> dict[str, Any]:
    return {"parameters": [STREAM_ID], "get": operation(
        "streamEvents", "Resume a stream", "streams",
        {"200": event_stream("The events after the given one, then live ones until `done`. "
                             "A finished stream whose events have expired is replayed from "
                             "storage, numbered afresh from a `start`."),
         "204": {"description": "The stream has ended and the client has its last event: an "
                                "`EventSource` stops reconnecting."}},
        errors(own={400: ("invalid_event_id",), 404: ("stream_not_found", "not_found"),
                    503: ("unavailable",)}),
        parameters=RESUME_PARAMETERS,
        security=READ_SECURITY)}


def _stream_cancel() -> dict[str, Any]:
    statuses = ["cancelling", *MESSAGE_STATUSES]
    return {"parameters": [STREAM_ID], "post": operation(
        "cancelStream", "Stop a stream", "streams",
        {"202": json_response(
            "`cancelling`: the answer is being stopped, and keeps its text with status "
            "`cancelled`. An answer that has already ended is left as it is; its status is "
            "given.", closed({"stream_id": {"type": "string"}, "status": {"enum": statuses}}))},
        errors(changes=True, own={404: ("stream_not_found", "not_found"),
                                  503: ("unavailable",)}),
        security=WRITE_SECURITY)}


def _models() -> dict[str, Any]:
    return {"get": operation(
        "listModels", "The models this server serves", "models",
        {"200": json_response("The default model first, then the configured ones and the "
                              "demo catalogue.",
                              closed({"models": {"type": "array", "items": ref("Model")}}))},
        errors(), security=READ_SECURITY)}


def paths() -> dict[str, Any]:
    """The path items of threads, messages, streams and models, by path."""
    return {
        "/api/v1/threads": _threads(),
        "/api/v1/threads/{thread_id}": _thread(),
        "/api/v1/threads/{thread_id}/messages": _messages(),
        "/api/v1/threads/{thread_id}/messages/stream": _message_stream(),
        "/api/v1/streams/{stream_id}/events": _stream_events(),
        "/api/v1/streams/{stream_id}/cancel": _stream_cancel(),
        "/api/v1/models": _models(),
    }
