"""Component schemas: the objects Sluice's API writes and reads.

Objects the server writes are closed (`additionalProperties: false`) and list every
field as required, nullable where the server writes null: they are exactly the
`to_dict()` shapes of services/storage/models.py. Request bodies are open, since the
server ignores fields it does not know.
"""
from __future__ import annotations

from .builders import Schema, closed, nullable, ref

TIMESTAMP: Schema = {"type": "string", "format": "date-time",
                     "description": "UTC, ISO 8601 with milliseconds and `Z`."}
MESSAGE_STATUSES = ["streaming", "complete", "cancelled", "error", "interrupted"]
ENDED_STATUSES = MESSAGE_STATUSES[1:]
FINISH_REASONS = ["stop", "length", "tool_calls", "cancelled", "error"]
ROLES = ["user", "assistant", "tool"]
COUNT: Schema = {"type": "integer", "minimum": 0}


def sluice_id(prefix: str, what: str) -> Schema:
    """An id the server made (storage/models.py `new_id`): its kind's prefix, 24 hex digits."""
    return {"type": "string", "pattern": f"^{prefix}_[0-9a-f]{{24}}$", "description": what}


MODEL_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 200,
                    "description": "`provider/model`, e.g. `demo/echo`.",
                    "examples": ["demo/echo"]}

ERROR = closed({"error": closed({
    "code": {"type": "string", "pattern": "^[a-z0-9_]+$",
             "description": "Stable, snake_case: what a program branches on."},
    "message": {"type": "string", "description": "A sentence for people; may change."},
})}, description="Every error Sluice answers, on every route.")

MESSAGE_ERROR = closed({
    "code": {"type": "string", "description": "e.g. `timeout`, `upstream_error`, "
                                              "`interrupted` (the README's table)."},
    "message": {"type": "string"},
    "retryable": {"type": "boolean"},
}, description="Why an answer failed; also the `error` stream event's fields.")

USAGE = closed({"input_tokens": nullable(COUNT), "output_tokens": nullable(COUNT)},
               description="What the provider reported; null where it reported nothing.")

METRICS = closed({
    "ttft_ms": nullable({**COUNT, "description": "Time to the first visible output."}),
    "duration_ms": nullable(COUNT),
    "tokens_per_sec": nullable({"type": "number", "minimum": 0}),
}, description="Timings of an answer; null until known.")

TOOL_CALL = closed({
    "id": {"type": "string"},
    "name": {"type": "string"},
    "arguments": {"type": "string", "description": "The complete JSON text of the arguments."},
    "server": {"type": "boolean", "description": "Sluice ran it (its result is a `tool` "
                                                 "message); false: the caller runs it."},
    "step": {"type": "integer", "minimum": 1,
             "description": "The round of the answer it was made in."},
    "offset": {"type": "integer", "minimum": 0,
               "description": "Where its round's text ends in the message's `content`."},
}, optional=("server", "step", "offset"))

THREAD_SUMMARY = closed({
    "content": {"type": "string", "description": "The summary's text."},
    "upto_message_id": sluice_id("msg", "The last message it covers."),
    "created_at": TIMESTAMP,
}, description="What the thread said up to a message, sent to the model instead of those "
               "messages once the thread outgrew its window; they stay stored and listed.")

THREAD = closed({
    "id": sluice_id("thr", "The thread's id."),
    "title": nullable({"type": "string", "maxLength": 200}),
    "model": nullable({**MODEL_ID, "description": "This thread's model; null: the default."}),
    "system": nullable({"type": "string", "description": "The system prompt."}),
    "summary": nullable(ref("ThreadSummary")),
    "documents": {"type": "array", "items": sluice_id("doc", "An attached document."),
                  "description": "The documents its answers search; empty: all of yours."},
    "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
})

MESSAGE = closed({
    "id": sluice_id("msg", "The message's id."),
    "thread_id": sluice_id("thr", "Its thread."),
    "role": {"enum": ROLES},
    "content": {"type": "string", "description": "The text; partial while `streaming`."},
    "reasoning": nullable({"type": "string", "description": "Visible thinking, if any."}),
    "status": {"enum": MESSAGE_STATUSES},
    "model": nullable({**MODEL_ID, "description": "The model that answered (assistant)."}),
    "finish_reason": nullable({"enum": FINISH_REASONS}),
    "tool_calls": nullable({"type": "array", "items": ref("ToolCall")}),
    "tool_call_id": nullable({"type": "string", "description": "On `tool` messages."}),
    "sources": nullable({"type": "array", "items": {"type": "object"},
                         "description": "The document excerpts an answer was given, as its "
                                        "`sources` event listed them (for citations)."}),
    "usage": ref("Usage"),
    "metrics": ref("Metrics"),
    "error": nullable(ref("MessageError")),
    "stream_id": nullable(sluice_id("str", "The answer's stream (assistant).")),
    "created_at": TIMESTAMP,
})

USER = closed({
    "id": {"type": "string", "pattern": "^usr_[0-9a-z]+$"},
    "name": {"type": "string", "minLength": 1, "maxLength": 64},
    "created_at": TIMESTAMP,
})

IDENTITY = closed({"id": USER["properties"]["id"], "name": USER["properties"]["name"]},
                  description="Who a request acts for (`local` with `SLUICE_AUTH=off`).")

KEY = closed({
    "id": sluice_id("key", "The key's id, for revoking it."),
    "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "prefix": {"type": "string", "pattern": "^sk-sluice-",
               "description": "The secret's first characters, to recognise it by."},
    "models": nullable({"type": "array", "items": {"type": "string"},
                        "description": "The only models this key may use; null: all."}),
    "rpm": nullable({"type": "integer", "minimum": 1,
                     "description": "Requests a minute; null: the server's `SLUICE_KEY_RPM`."}),
    "max_streams": nullable({"type": "integer", "minimum": 1,
                             "description": "Answers streaming at once; null: the server's "
                                            "`SLUICE_KEY_MAX_STREAMS`."}),
    "expires_at": nullable(TIMESTAMP),
    "revoked_at": nullable(TIMESTAMP),
    "created_at": TIMESTAMP,
}, description="An API key; its secret is never shown again after it is made.")

MODEL = closed({
    "id": MODEL_ID,
    "provider": {"type": "string"},
    "streaming": {"type": "boolean",
                  "description": "false: the provider is called without streaming; Sluice "
                                 "still serves a stream."},
})

# --- request bodies ----------------------------------------------------------------------

NON_BLANK: Schema = {"type": "string", "minLength": 1, "pattern": "\\S"}

THREAD_FIELDS: Schema = {
    "type": "object",
    "properties": {
        "title": nullable({"type": "string", "maxLength": 200}),
        "model": nullable({**MODEL_ID, "pattern": "\\S",
                           "description": "A model this server serves (`GET /api/v1/models`); "
                                          "another is `400 unknown_model`."}),
        "system": nullable({"type": "string"}),
        "documents": nullable({"type": "array", "maxItems": 100,
                               "items": {"type": "string", "minLength": 1},
                               "description": "Ids of your documents to attach (`[]`: none, "
                                              "so answers search all of yours); another's "
                                              "or a missing one is `404 document_not_found`."}),
    },
}

FUNCTION_TOOL: Schema = {
    "type": "object", "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "description": {"type": "string"},
            "parameters": {"type": "object", "description": "A JSON Schema object."},
        }},
    },
    "description": "An OpenAI-style function the caller runs.",
}

SERVER_TOOL: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
                       "description": "The name of a tool Sluice runs itself (`current_time`, "
                                      "`calculator`, `fetch_url`, `search_thread`, or one the "
                                      "operator added); another is `400 unknown_tool`."}

ANSWER_LIMITS: Schema = {
    "type": "object", "additionalProperties": False,
    "description": "Lower limits for this answer than the model's; a higher one is "
                   "`400 invalid_limits`. Reaching one ends the answer with `finish_reason` "
                   "`length` and `limit` in `done`.",
    "properties": {
        "max_rounds": {"type": "integer", "minimum": 1,
                       "description": "Model calls: the first, and one after each tool round."},
        "max_tool_calls": {"type": "integer", "minimum": 0,
                           "description": "Calls of tools Sluice runs."},
        "max_seconds": {"type": "number", "minimum": 1, "description": "Wall time."},
        "max_tokens": {"type": "integer", "minimum": 1,
                       "description": "Output tokens, all rounds together."},
    },
}

TOOL_RESULT: Schema = {"type": "object", "required": ["tool_call_id", "content"],
                       "properties": {"tool_call_id": {"type": "string"},
                                      "content": {"type": "string"}}}

REPLY: Schema = {
    "type": "object",
    "description": "Either `content` (a user message) or `tool_results` (answers to the "
                   "pending tool calls of the last answer), never both.",
    "oneOf": [{"required": ["content"]}, {"required": ["tool_results"]}],
    "properties": {
        "content": NON_BLANK,
        "tool_results": {"type": "array", "minItems": 1, "items": ref("ToolResult")},
        "model": nullable({**MODEL_ID, "pattern": "\\S",
                           "description": "This answer's model instead of the thread's."}),
        "tools": nullable({"type": "array", "items": {"oneOf": [SERVER_TOOL,
                                                                ref("FunctionTool")]}}),
        "limits": nullable(ANSWER_LIMITS),
        "callback_url": nullable({**NON_BLANK, "description": (
            "Answer as a background job: `202` at once, the answer POSTed here (signed, "
            "Standard Webhooks) when it ends. On the stream route it is `400 "
            "unsupported_field`.")}),
    },
}

KEY_REQUEST: Schema = {"type": "object", "properties": {
    "name": nullable({**NON_BLANK, "maxLength": 100}),
    "expires_in_days": nullable({"type": "number", "exclusiveMinimum": 0, "maximum": 3650}),
    "models": nullable({"type": "array", "minItems": 1,
                        "items": {"type": "string", "minLength": 1, "maxLength": 200}}),
    "rpm": nullable({"type": "integer", "minimum": 1, "maximum": 1000000}),
    "max_streams": nullable({"type": "integer", "minimum": 1, "maximum": 1000000}),
}}

LOGIN: Schema = {"type": "object", "required": ["name", "password"], "properties": {
    "name": {"type": "string"}, "password": {"type": "string"}}}

COMPONENTS: dict[str, Schema] = {
    "Error": ERROR, "Thread": THREAD, "ThreadSummary": THREAD_SUMMARY, "Message": MESSAGE, "MessageError": MESSAGE_ERROR,
    "Usage": USAGE, "Metrics": METRICS, "ToolCall": TOOL_CALL, "User": USER,
    "Identity": IDENTITY, "Key": KEY, "Model": MODEL, "ThreadFields": THREAD_FIELDS,
    "Reply": REPLY, "FunctionTool": FUNCTION_TOOL, "ToolResult": TOOL_RESULT,
    "KeyRequest": KEY_REQUEST, "Login": LOGIN,
}
