"""Background jobs and their webhooks: `/api/v1/jobs…`, `/api/v1/webhooks/secret`
(blueprints/jobs.py); what a `callback_url` request answers is here too."""
from __future__ import annotations

from typing import Any

from .builders import (READ_SECURITY, WRITE_SECURITY, Schema, closed, errors, json_response,
                       nullable, operation, path_id, ref, with_links)
from .events import RESUME_PARAMETERS, event_stream
from .schemas import COUNT, TIMESTAMP, sluice_id

JOB_STATUSES = ["queued", "running", "complete", "failed", "cancelled"]
JOB_ID = path_id("job_id", "A job's id (`job_…`).")
JOB_NOT_FOUND = ("job_not_found",)
# What a request with `callback_url` can be refused for besides its route's own reasons
# (services/jobs/submit.py).
JOB_CODES = {400: ("invalid_callback_url", "invalid_idempotency_key"),
             409: ("idempotency_conflict",)}
ONE_JOB = closed({"job": ref("Job")})
REPEATED = ("With `callback_url` and an `Idempotency-Key` already used with the same body: "
            "the job that request made, not another.")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "With `callback_url`: makes a retried POST safe. The same key and body "
                   "answer the first job (`200`); the same key with another body is `409 "
                   "idempotency_conflict`."}

DELIVERY = closed({
    "attempt": {"type": "integer", "minimum": 1},
    "attempted_at": TIMESTAMP,
    "status_code": nullable({"type": "integer", "description": "The receiver's; null: no "
                                                               "answer."}),
    "duration_ms": COUNT,
    "error": nullable({"type": "string"}),
    "response_excerpt": nullable({"type": "string"}),
}, description="One POST of a job's webhook.")

WEBHOOK = closed({
    "url": {"type": "string", "description": "The `callback_url`."},
    "status": {"enum": ["none", "pending", "delivered", "failed"],
               "description": "`none` until the job ends."},
    "id": {"type": "string", "pattern": "^msg_",
           "description": "Its `webhook-id`: the same on every attempt."},
    "attempts": COUNT,
    "next_attempt_at": nullable(TIMESTAMP),
    "delivered_at": nullable(TIMESTAMP),
    "deliveries": {"type": "array", "items": ref("WebhookDelivery"),
                   "description": "Every attempt, oldest first; only from `GET "
                                  "/api/v1/jobs/{job_id}`."},
}, optional=("deliveries",))

JOB = closed({
    "id": sluice_id("job", "The job's id."),
    "kind": {"enum": ["message", "operation", "document"],
             "description": "A `document` job indexes a large upload; it has no webhook."},
    "status": {"enum": JOB_STATUSES},
    "stream_id": sluice_id("str", "Its current run's stream."),
    "thread_id": nullable(sluice_id("thr", "A `message` job's thread.")),
    "message_id": nullable(sluice_id("msg", "A `message` job's answer, once it runs.")),
    "operation_run_id": nullable(sluice_id("opr", "An `operation` job's run.")),
    "result": {"description": "Once `complete`: the answer `Message` of a `message` job, the "
                              "run's result of an `operation` job; else null."},
    "error": nullable(ref("MessageError")),
    "attempts": {**COUNT, "description": "Runs started."},
    "webhook": ref("Webhook"),
    "created_at": TIMESTAMP,
    "finished_at": nullable(TIMESTAMP),
}, description="Background work whose result is POSTed to its `callback_url`.")

COMPONENTS: dict[str, Schema] = {"Job": JOB, "Webhook": WEBHOOK, "WebhookDelivery": DELIVERY}


def _one_job(description: str) -> dict[str, Any]:
    return with_links(json_response(description, ONE_JOB), "job_id", "/job/id", "getJob",
                      "cancelJob", "jobEvents")


def job_answers(what: str) -> dict[str, Any]:
    """The `202` of a request with `callback_url`, and the text of its repeat's `200`."""
    return {"202": _one_job(f"With `callback_url`: {what} is queued as a job; its result is "
                            "POSTed there when it ends."), "200": REPEATED}


def _jobs() -> dict[str, Any]:
    return {"get": operation(
        "listJobs", "Your jobs", "jobs",
        {"200": json_response("Newest first, at most `limit` (and 100).", closed(
            {"jobs": {"type": "array", "items": ref("Job")}}))},
        errors(own={400: ("invalid_parameter",)}), security=READ_SECURITY,
        parameters=[
            {"name": "status", "in": "query", "required": False,
             "schema": {"enum": JOB_STATUSES}, "description": "Only jobs in this status."},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0},
             "description": "How many, at most 100 (the default)."}])}


def _job() -> dict[str, Any]:
    return {"parameters": [JOB_ID], "get": operation(
        "getJob", "One job, with its webhook's deliveries", "jobs",
        {"200": json_response("The job; `webhook.deliveries` lists every attempt.", ONE_JOB)},
        errors(own={404: JOB_NOT_FOUND}), security=READ_SECURITY)}


def _cancel() -> dict[str, Any]:
    return {"parameters": [JOB_ID], "post": operation(
        "cancelJob", "Stop a job", "jobs",
        {"202": _one_job("A queued job is `cancelled` now; a running one's answer is being "
                         "stopped; an ended one is left as it is.")},
        errors(changes=True, own={404: JOB_NOT_FOUND, 503: ("unavailable",)}),
        security=WRITE_SECURITY)}


def _redeliver() -> dict[str, Any]:
    return {"parameters": [JOB_ID], "post": operation(
        "redeliverJob", "Send an ended job's webhook again", "jobs",
        {"202": _one_job("Its webhook is `pending` again, under the same `webhook-id`.")},
        errors(changes=True, own={404: JOB_NOT_FOUND, 409: ("job_not_finished",)}),
        security=WRITE_SECURITY)}


def _events() -> dict[str, Any]:
    return {"parameters": [JOB_ID], "get": operation(
        "jobEvents", "Follow a job", "jobs",
        {"200": event_stream("The current run's events after the given one: `status` events "
                             "(`queued`, `connecting`, `delivering`) around the answer's. "
                             "While the job is queued, pings until a worker begins it."),
         "204": {"description": "The job's stream has ended and the client has its last "
                                "event, or it was cancelled before it ran."}},
        errors(own={400: ("invalid_event_id",), 404: JOB_NOT_FOUND, 503: ("unavailable",)}),
        parameters=RESUME_PARAMETERS,
        security=READ_SECURITY)}


def _secret() -> dict[str, Any]:
    return {"post": operation(
        "rotateWebhookSecret", "Make a new webhook signing secret", "jobs",
        {"201": json_response("The new secret: deliveries are signed with it from now on "
                              "(the previous one still signs for a day).", closed(
                                  {"secret": {"type": "string", "pattern": "^whsec_"}}))},
        errors(changes=True), security=WRITE_SECURITY)}


def paths() -> dict[str, Any]:
    """The path items of jobs and webhooks, by path."""
    return {
        "/api/v1/jobs": _jobs(),
        "/api/v1/jobs/{job_id}": _job(),
        "/api/v1/jobs/{job_id}/cancel": _cancel(),
        "/api/v1/jobs/{job_id}/redeliver": _redeliver(),
        "/api/v1/jobs/{job_id}/events": _events(),
        "/api/v1/webhooks/secret": _secret(),
    }
