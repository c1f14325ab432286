"""AI operations and their runs: `/api/v1/operations…` (blueprints/operations.py)."""
from __future__ import annotations

from typing import Any

from .builders import (READ_SECURITY, WRITE_SECURITY, Schema, closed, errors, json_body,
                       json_response, nullable, operation, path_id, ref, with_links)
from .events import event_stream
from .job_paths import IDEMPOTENCY_KEY, JOB_CODES, ONE_JOB, job_answers
from .schemas import FINISH_REASONS, MODEL_ID, NON_BLANK, TIMESTAMP, sluice_id

RUN_STATUSES = ["queued", "streaming", "complete", "cancelled", "error", "interrupted"]
NAME = path_id("name", "An operation's name, from `GET /api/v1/operations`.")
RUN_ID = path_id("run_id", "An operation run's id (`opr_…`).")
RESULT: Schema = {"description": "The parsed result: a string for a `text` operation, the "
                                 "JSON value (checked against `output_schema`) for a `json` "
                                 "one; null until the run has one."}
# What refuses a run before anything is stored (services/operations/runs.py `prepare`).
RUN_CODES = {400: ("invalid_input", "invalid_field", "unknown_model"),
             403: ("model_not_allowed",),
             404: ("operation_not_found",),
             429: ("too_many_streams",),
             503: ("shutting_down", "unavailable")}

OPERATION = closed({
    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "description": {"type": "string"},
    "input_schema": {"type": "object", "description": "The `input` it takes, as a JSON "
                                                      "Schema object."},
    "output": {"enum": ["text", "json"]},
    "output_schema": nullable({"type": "object", "description": "What a `json` operation's "
                                                                "result must match."}),
    "model": nullable({**MODEL_ID, "description": "Its own model; null: the default."}),
}, description="An AI operation: built in, or from `SLUICE_OPERATIONS_FILE`.")

OPERATION_RUN = closed({
    "id": sluice_id("opr", "The run's id."),
    "operation": {"type": "string"},
    "input": {"type": "object", "description": "The checked input, defaults filled in."},
    "status": {"enum": RUN_STATUSES},
    "model": nullable(MODEL_ID),
    "result": RESULT,
    "raw": {"type": "string", "description": "The model's text (the repaired one, if the "
                                             "first was not valid)."},
    "finish_reason": nullable({"enum": FINISH_REASONS}),
    "error": nullable(ref("MessageError")),
    "usage": ref("Usage"),
    "metrics": ref("Metrics"),
    "stream_id": nullable(sluice_id("str", "The run's stream.")),
    "created_at": TIMESTAMP,
}, description="One call of an operation: its input, answer and result.")

RUN_REQUEST: Schema = {"type": "object", "properties": {
    "input": {"type": "object", "description": "The operation's fields (`input_schema`); a "
                                               "bad one is `400 invalid_input` naming it."},
    "model": nullable({**MODEL_ID, "pattern": "\\S",
                       "description": "This run's model instead of the operation's."}),
    "callback_url": nullable({**NON_BLANK, "description": (
        "Run it as a background job: `202` at once, the result POSTed here (signed, "
        "Standard Webhooks) when it ends. Not allowed on the stream route.")}),
}}

COMPONENTS: dict[str, Schema] = {"Operation": OPERATION, "OperationRun": OPERATION_RUN,
                                 "OperationRequest": RUN_REQUEST}


def _answer(status: Schema, **extra: Schema) -> Schema:
    return closed({**extra, "result": RESULT, "raw": OPERATION_RUN["properties"]["raw"],
                   "usage": ref("Usage"), "metrics": ref("Metrics"),
                   "run_id": sluice_id("opr", "The stored run."), "status": status,
                   "model": nullable(MODEL_ID)})


def _operations() -> dict[str, Any]:
    return {"get": operation(
        "listOperations", "The operations this server runs", "operations",
        {"200": json_response("Every operation, with the input it takes.", closed(
            {"operations": {"type": "array", "items": ref("Operation")}}))},
        errors(), security=READ_SECURITY)}


def _runs() -> dict[str, Any]:
    limit = {"type": "integer", "minimum": 0}
    return {"get": operation(
        "listOperationRuns", "Your operation runs", "operations",
        {"200": json_response("Newest first, at most `limit` (and 100).", closed(
            {"runs": {"type": "array", "items": ref("OperationRun")}}))},
        errors(own={400: ("invalid_parameter",)}), security=READ_SECURITY,
        parameters=[
            {"name": "operation", "in": "query", "required": False,
             "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"},
             "description": "Only this operation's runs (another name is `400`)."},
            {"name": "status", "in": "query", "required": False,
             "schema": {"enum": RUN_STATUSES}, "description": "Only runs in this status."},
            {"name": "limit", "in": "query", "required": False, "schema": limit,
             "description": "How many, at most 100 (the default)."}])}


def _run() -> dict[str, Any]:
    return {"parameters": [RUN_ID], "get": operation(
        "getOperationRun", "One operation run", "operations",
        {"200": json_response("The run; one still streaming holds its text so far.",
                              closed({"run": ref("OperationRun")}))},
        errors(own={404: ("run_not_found",)}), security=READ_SECURITY)}


def _run_operation() -> dict[str, Any]:
    done = {"enum": ["complete", "cancelled", "interrupted"]}
    job = job_answers("the run")
    ok = with_links(json_response(
        "The finished run: `complete`, or `cancelled` or `interrupted` with what did arrive. "
        + job["200"], {"anyOf": [_answer(done), ONE_JOB]}), "run_id", "/run_id",
        "getOperationRun")
    return {"parameters": [NAME], "post": operation(
        "runOperation", "Run an operation and wait for its result", "operations",
        {"200": ok, "202": job["202"],
         "502": json_response("The model failed, or its answer was not valid even after one "
                              "repair; the run is stored with status `error`.",
                              _answer({"const": "error"}, error=ref("MessageError")))},
        errors(reads_body=True, changes=True, own={**RUN_CODES, 400: (*RUN_CODES[400],
                                                                     *JOB_CODES[400]),
                                                   409: JOB_CODES[409]}),
        body=json_body(ref("OperationRequest"), required=False), parameters=[IDEMPOTENCY_KEY],
        security=WRITE_SECURITY)}


def _stream_operation() -> dict[str, Any]:
    return {"parameters": [NAME], "post": operation(
        "streamOperation", "Run an operation and stream its answer", "operations",
        {"200": event_stream("The run's events from `start` to `done`, which carries the "
                             "result. A request refused before the stream starts gets a JSON "
                             "error instead.")},
        errors(reads_body=True, changes=True, own={**RUN_CODES, 400: (*RUN_CODES[400],
                                                                     "unsupported_field")}),
        body=json_body(ref("OperationRequest"), required=False), security=WRITE_SECURITY,
        description="`callback_url` is `400 unsupported_field` here: a streamed run has no "
                    "webhook.")}


def paths() -> dict[str, Any]:
    """The path items of operations and their runs, by path."""
    return {
        "/api/v1/operations": _operations(),
        "/api/v1/operations/runs": _runs(),
        "/api/v1/operations/runs/{run_id}": _run(),
        "/api/v1/operations/{name}": _run_operation(),
        "/api/v1/operations/{name}/stream": _stream_operation(),
    }
