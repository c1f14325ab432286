"""The stream protocol in the description: one `text/event-stream` event per schema.

OpenAPI 3.1 has no word for a stream of items, so the response's `schema` describes
one event as an SSE client reads it — `id`, `event` and `data` — and `data`, a line
of JSON, is described with `contentMediaType` and `contentSchema`. Each event name
goes with its own data, so a checker that reads the stream (schemathesis does) holds
every event to its exact shape. Only the events the server sends today are listed;
`: ping` comments carry no event.
"""
from __future__ import annotations

from typing import Any

from ..providers.catalog import LIMIT_KEYS
from .builders import Schema, closed, nullable, ref
from .schemas import ENDED_STATUSES, FINISH_REASONS, MODEL_ID, sluice_id

SEQ: Schema = {"type": "integer", "minimum": 1,
               "description": "The event's number in its stream: 1, 2, 3, … with no gaps."}


RUN_ID: Schema = sluice_id("opr", "The operation run being written (operations only).")
STAGES = ["queued", "connecting", "retrying", "fallback", "tool_running", "step",
          "retrieving", "summarizing", "delivering", "indexing"]


def _data(event: str, fields: dict[str, Schema], description: str,
          optional: tuple[str, ...] = ()) -> Schema:
    """An event's `data` object: its `type` repeats the event name, and `seq` its id."""
    return closed({"type": {"const": event}, "seq": SEQ, **fields}, optional=optional,
                  description=description)


EVENT_DATA: dict[str, Schema] = {
    "start": _data("start", {
        "stream_id": sluice_id("str", "The stream, for resuming or cancelling it."),
        "message_id": nullable(sluice_id("msg", "The assistant message being written; "
                                                "null for an operation.")),
        "thread_id": nullable(sluice_id("thr", "Its thread; null for an operation.")),
        "model": MODEL_ID,
        "run_id": RUN_ID,
    }, "The answer has started; also the first event of a replay from storage.",
        optional=("run_id",)),
    "status": _data("status", {
        "stage": {"enum": STAGES, "description": "What the answer is waiting on: the model "
                                                 "(`connecting`), a retry or a fallback, "
                                                 "tools, the next step, or a job's queue "
                                                 "and webhook."},
        "message": {"type": "string", "description": "A sentence for people."},
        "job_id": sluice_id("job", "The job, in a job's stream."),
        "job_status": {"enum": ["queued", "running", "complete", "failed", "cancelled"],
                       "description": "The job's status at this stage."},
        "reason": {"type": "string", "description": "Why, e.g. `rate_limited`, "
                                                    "`invalid_output`."},
        "attempt": {"type": "integer", "minimum": 0,
                    "description": "`retrying`: the attempt about to be made."},
        "delay": {"type": "number", "minimum": 0,
                  "description": "`retrying`: seconds until it."},
        "model": MODEL_ID,
        "tools": {"type": "array", "items": {"type": "string"},
                  "description": "`tool_running`: the tools running."},
        "ids": {"type": "array", "items": {"type": "string"},
                "description": "`tool_running`: their calls' ids."},
        "step": {"type": "integer", "minimum": 1, "description": "`step`: this round."},
        "max_steps": {"type": "integer", "minimum": 1,
                      "description": "`step`: the answer's round limit."},
    }, "Progress that is not text: what the answer is waiting on.",
        optional=("job_id", "job_status", "reason", "attempt", "delay", "model", "tools",
                  "ids", "step", "max_steps")),
    "sources": _data("sources", {
        "sources": {"type": "array", "items": closed({
            "document_id": sluice_id("doc", "The document."),
            "filename": {"type": "string"},
            "chunk": {"type": "integer", "minimum": 0, "description": "The chunk's place in it."},
            "score": {"type": "number", "description": "How well it matched; higher is better."},
            "excerpt": {"type": "string", "description": "The start of the chunk, for a citation."},
        })},
    }, "The excerpts of the user's documents given to the model, best first, for citations."),
    "message_saved": _data("message_saved", {"message": ref("Message")},
                           "A message this request stored: the user's, or a tool result."),
    "delta": _data("delta", {"content": {"type": "string"}}, "The next piece of the answer."),
    "reasoning": _data("reasoning", {"content": {"type": "string"}},
                       "The next piece of visible thinking, where the provider sends it."),
    "tool_call": _data("tool_call", {
        "id": {"type": "string"}, "name": {"type": "string"},
        "arguments": {"type": "string", "description": "The complete JSON text."},
        "server": {"type": "boolean", "description": "Sluice runs it: its `tool_result` "
                                                     "follows and the answer goes on."},
    }, "A complete tool call. A call of a caller's function ends the turn with `tool_calls`."),
    "tool_result": _data("tool_result", {
        "id": {"type": "string"}, "name": {"type": "string"},
        "result": {"type": "string", "description": "What the tool returned."},
        "error": {"type": "string", "description": "Why the tool gave no result; the model "
                                                   "is told and goes on."},
        "duration_ms": {"type": "integer", "minimum": 0},
    }, "The result of a call Sluice ran.", optional=("result", "error")),
    "usage": _data("usage", {"input_tokens": nullable({"type": "integer", "minimum": 0}),
                             "output_tokens": nullable({"type": "integer", "minimum": 0})},
                   "Token counts, as the provider reported them."),
    "error": _data("error", {
        "code": {"type": "string"}, "message": {"type": "string"},
        "retryable": {"type": "boolean"},
    }, "The answer failed (the text so far is kept); `done` follows."),
    "done": _data("done", {
        "status": {"enum": ENDED_STATUSES},
        "finish_reason": {"enum": FINISH_REASONS},
        "message_id": nullable(sluice_id("msg", "The assistant message; null for an "
                                                "operation.")),
        "model": MODEL_ID,
        "usage": ref("Usage"),
        "metrics": ref("Metrics"),
        "run_id": RUN_ID,
        "result": {"description": "An operation's parsed result (null if there is none)."},
        "limit": {"enum": list(LIMIT_KEYS),
                  "description": "The answer limit that ended it (`finish_reason` `length`)."},
    }, "Always the last event, exactly once; the server then closes the response.",
        optional=("run_id", "result", "limit")),
}


def _event(name: str) -> Schema:
    return {
        "type": "object",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[1-9][0-9]*$"},
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": ref(f"{_component(name)}")},
        },
    }


def _component(name: str) -> str:
    return "".join(part.title() for part in name.split("_")) + "Event"


STREAM_EVENT: Schema = {
    "description": "One Server-Sent Event as a client reads it: its `id`, its `event` name, "
                   "and its `data`, one line of JSON.",
    "oneOf": [_event(name) for name in EVENT_DATA],
}

COMPONENTS: dict[str, Schema] = {
    "StreamEvent": STREAM_EVENT,
    **{_component(name): data for name, data in EVENT_DATA.items()},
}


def event_stream(description: str) -> dict[str, Any]:
    """A `200 text/event-stream` answer of Sluice's events."""
    return {"description": description,
            "headers": {"Cache-Control": {"schema": {"const": "no-cache"}},
                        "X-Accel-Buffering": {"schema": {"const": "no"}}},
            "content": {"text/event-stream": {"schema": ref("StreamEvent")}}}


_EVENT_ID: Schema = {"type": "string", "pattern": "^[0-9]{1,18}$"}
# Where a (re)connecting client says which events it has (a stream's or a job's).
RESUME_PARAMETERS: list[dict[str, Any]] = [
    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": _EVENT_ID,
     "description": "The last event the client has; wins over `after`."},
    {"name": "after", "in": "query", "required": False, "schema": _EVENT_ID,
     "description": "The last event the client has, for clients that cannot set headers; "
                    "0 (the default) is from the start."}]

