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

from .builders import Schema, closed, nullable, ref
from .schemas import ENDED_STATUSES, FINISH_REASONS, MODEL_ID, sluice_id

SEQ: Schema = {"type": "integer", "minimum": 1,
               "description": "The event's number in its stream: 1, 2, 3, … with no gaps."}


def _data(event: str, fields: dict[str, Schema], description: str) -> Schema:
    """An event's `data` object: its `type` repeats the event name, and `seq` its id."""
    return closed({"type": {"const": event}, "seq": SEQ, **fields}, description=description)


EVENT_DATA: dict[str, Schema] = {
    "start": _data("start", {
        "stream_id": sluice_id("str", "The stream, for resuming or cancelling it."),
        "message_id": sluice_id("msg", "The assistant message being written."),
        "thread_id": sluice_id("thr", "Its thread."),
        "model": MODEL_ID,
    }, "The answer has started; also the first event of a replay from storage."),
    "message_saved": _data("message_saved", {"message": ref("Message")},
                           "A message this request stored: the user's, or a tool result."),
    "delta": _data("delta", {"content": {"type": "string"}}, "The next piece of the answer."),
    "reasoning": _data("reasoning", {"content": {"type": "string"}},
                       "The next piece of visible thinking, where the provider sends it."),
    "tool_call": _data("tool_call", {
        "id": {"type": "string"}, "name": {"type": "string"},
        "arguments": {"type": "string", "description": "The complete JSON text."},
    }, "A complete call of a caller's function; the turn then ends with `tool_calls`."),
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
        "message_id": sluice_id("msg", "The assistant message."),
        "model": MODEL_ID,
        "usage": ref("Usage"),
        "metrics": ref("Metrics"),
    }, "Always the last event, exactly once; the server then closes the response."),
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
