"""What a socket may ask (the README's WebSocket table), served by the same services as
the HTTP endpoints: each returns the acknowledgement, and what to follow once that
acknowledgement has gone out (so a client always learns a stream's id before its
first event).

Every request body is a JSON object checked as an HTTP body is; ids are checked as the
URL converter checks them, so an id that could never exist is simply not found.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .. import chat
from ..auth import Identity
from ..errors import ApiError
from ..jobs import jobs, submit
from ..jobs.events import job_frames
from ..jobs.manage import get_job, job_view
from ..operations import operations, runs
from ..providers import registry
from ..storage.work import Job
from ..streaming import Streaming, cancel_stream, stream_frames
from ..streaming.subscribe import follow
from ..web.body import check_json_value
from ..web.params import IdConverter
from .followers import Followers

STREAM_EVENT = "stream_event"
JOB_PROGRESS = "job_progress"
_ID = re.compile(IdConverter.regex)
_MAX_SEQ = 10 ** 18


@dataclass(frozen=True)
class Reply:
    ack: dict[str, Any]
    then: Callable[[], None] | None = None  # begins following, after the ack is sent


def body_of(data: Any) -> dict[str, Any]:
    """The event's data as a request body: a JSON object, checked like an HTTP one."""
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The event's data must be a JSON object.")
    check_json_value(data)
    return data


def _id(body: dict[str, Any], field: str, kind: str, missing: str = "") -> str:
    """The id in `field`: a 400 if it is missing or not a string; one that no `kind` could
    have is not found, as its URL would not be."""
    value = body.get(field)
    if value is None:
        raise ApiError(400, "invalid_field", f"{field!r} is required{missing}.", param=field)
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{field!r} must be a string.", param=field)
    if not _ID.fullmatch(value):
        raise _not_found(kind, value)
    return value


def _seq(body: dict[str, Any]) -> int:
    after = body.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < _MAX_SEQ:
        raise ApiError(400, "invalid_event_id", "'after' must be the last seq received: a "
                       "non-negative integer of at most 18 digits.", param="after")
    return after


def _not_found(kind: str, value: str) -> ApiError:
    return ApiError(404, f"{kind}_not_found", f"There is no {kind} {value[:100]!r}.")


def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != field}


def _follow_stream(followers: Followers, sid: str, stream_id: str, frames: Any) -> Reply:
    return Reply({"stream_id": stream_id},
                 lambda: followers.start(sid, stream_id, STREAM_EVENT, {"stream_id": stream_id},
                                         frames))


def _follow_job(session: Session, core: Streaming, followers: Followers, sid: str,
                user: Identity, job: Job, after: int) -> Reply:
    """The job's stream as `job_progress`, then the job itself once its stream is over."""
    job_id = job.id
    frames = job_frames(session, core, user, job_id, after)

    def final() -> dict[str, Any]:
        with core.db.transaction() as own:
            ended = own.get(Job, job_id)
            return {"type": "job", "job_id": job_id,
                    "job": job_view(own, ended) if ended is not None else None}
    label = {"job_id": job_id, "stream_id": job.stream_id}
    return Reply({"job_id": job_id},
                 lambda: followers.start(sid, f"job:{job_id}", JOB_PROGRESS, label, frames, final))


def _job_or_stream(session: Session, core: Streaming, followers: Followers, sid: str,
                   user: Identity, body: dict[str, Any], submit_job: Callable[[], Any],
                   start: Callable[[], Any]) -> Reply:
    """With `callback_url`, a webhook job (followed as `job_progress`); else a streamed
    answer, followed from its first event."""
    followers.check_room(sid)
    if body.get("callback_url") is not None:
        job, _ = submit_job()
        return _follow_job(session, core, followers, sid, user, job, 0)
    stream_id = start().spec.stream_id
    return _follow_stream(followers, sid, stream_id,
                          follow(core.log, stream_id, 0, core.ping_seconds))


def send_message(session: Session, core: Streaming, followers: Followers, sid: str,
                 user: Identity, data: Any) -> Reply:
    """`send_message`: `POST /api/v1/threads/<thread_id>/messages` in one event."""
    body = body_of(data)
    thread_id = _id(body, "thread_id", "thread", ": the thread to send the message to")
    body = _without(body, "thread_id")
    return _job_or_stream(
        session, core, followers, sid, user, body,
        lambda: submit.submit_message(session, jobs().runner, user, thread_id, body, None,
                                      f"/api/v1/threads/{thread_id}/messages"),
        lambda: chat.start_reply(session, registry(), core, user, thread_id, body))


def run_operation(session: Session, core: Streaming, followers: Followers, sid: str,
                  user: Identity, data: Any) -> Reply:
    """`run_operation`: `POST /api/v1/operations/<name>` in one event."""
    body = body_of(data)
    name = _id(body, "name", "operation", ": the operation to run (GET /api/v1/operations)")
    body = _without(body, "name")
    return _job_or_stream(
        session, core, followers, sid, user, body,
        lambda: submit.submit_operation(session, jobs().runner, user, name, body, None,
                                        f"/api/v1/operations/{name}"),
        lambda: runs.start(session, operations(), registry(), core, user, name, body))


def subscribe(session: Session, core: Streaming, followers: Followers, sid: str,
              user: Identity, data: Any) -> Reply:
    """`subscribe`: a stream's events after `after`, as `GET …/streams/<id>/events` with
    `Last-Event-ID` sends them; or a job's, as `GET /api/v1/jobs/<id>/events`."""
    body = body_of(data)
    after = _seq(body)
    if (body.get("stream_id") is None) == (body.get("job_id") is None):
        raise ApiError(400, "invalid_field", "Send either 'stream_id' or 'job_id'.")
    if body.get("job_id") is not None:
        job_id = _id(body, "job_id", "job")
        followers.check_room(sid, f"job:{job_id}")
        return _follow_job(session, core, followers, sid, user,
                           get_job(session, user, job_id), after)
    stream_id = _id(body, "stream_id", "stream")
    followers.check_room(sid, stream_id)
    frames = stream_frames(session, user.id, stream_id, after)
    if frames is None:  # over, and the client has all of it (HTTP's 204)
        return Reply({"stream_id": stream_id, "ended": True})
    return _follow_stream(followers, sid, stream_id, frames)


def cancel(session: Session, core: Streaming, followers: Followers, sid: str,
           user: Identity, data: Any) -> Reply:
    """`cancel`: `POST /api/v1/streams/<stream_id>/cancel`."""
    stream_id = _id(body_of(data), "stream_id", "stream", ": the stream to stop")
    return Reply(cancel_stream(session, user.id, stream_id))


REQUESTS = {"send_message": send_message, "run_operation": run_operation,
            "subscribe": subscribe, "cancel": cancel}
