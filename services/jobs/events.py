"""`GET /api/v1/jobs/<id>/events`: the job's current stream, once a worker began it."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from ..auth import Identity
from ..sse import PING
from ..storage.work import Job
from ..streaming import Streaming, stream_frames
from ..streaming.event_log import UnknownStream
from ..streaming.resume import log_frames
from ..streaming.subscribe import follow
from .manage import get_job

POLL_SECONDS = 0.25
JOB_POLLS = 8  # the job's row is read every 8 polls (2 s)


def job_frames(session: Session, core: Streaming, user: Identity, job_id: str,
               after: int) -> Iterator[bytes] | None:
    """The frames of the job's current stream, as `stream_frames` gives any stream's
    (None: it has ended and the client has all of it); until a worker has begun its
    stream, pings."""
    job = get_job(session, user, job_id)
    if _not_begun(job):
        stream_id = job.stream_id
        session.close()  # the response may wait and stream for minutes
        return _await_start(core, job_id, user.id, stream_id, after)
    if job.kind == "message" and job.message_id is None:
        session.close()
        return None  # ended before its answer began (cancelled): there is no stream
    return _begun_frames(session, core, user.id, job.kind, job.stream_id, after)


def _begun_frames(session: Session, core: Streaming, user_id: str, kind: str,
                  stream_id: str, after: int) -> Iterator[bytes] | None:
    """A begun job's stream, as `stream_frames` gives it. A `document` job's lives only
    in the log (nothing is stored to replay): once gone from there, its row says the end."""
    if kind != "document":
        return stream_frames(session, user_id, stream_id, after)
    session.close()
    try:
        return log_frames(core, stream_id, after)
    except UnknownStream:
        return None


def _not_begun(job: Job) -> bool:
    """Queued, or claimed by a worker that has not yet stored the answer it starts (a
    chat job's message), so its stream cannot be found by id yet."""
    return job.status == "queued" or (job.status == "running" and job.kind == "message"
                                      and job.message_id is None)


def _await_start(core: Streaming, job_id: str, user_id: str, stream_id: str,
                 after: int) -> Iterator[bytes]:
    """Look for the stream often (a worker here or in Redis begins it), and at the job's
    row seldom (cancelled, or begun where this process cannot see its stream)."""
    polls = 0
    while True:
        if core.log.has(stream_id):
            yield from follow(core.log, stream_id, after, core.ping_seconds)
            return
        if polls % JOB_POLLS == 0:
            with core.db.transaction() as session:
                job = session.get(Job, job_id)
                waiting = job is not None and _not_begun(job)
                status, current, kind = (job.status, job.stream_id, job.kind) if job \
                    else ("gone", None, None)
            if not waiting:
                if status in ("running", "complete", "failed") and current == stream_id:
                    frames = _begun_frames(core.db.sessions(), core, user_id, kind,
                                           stream_id, after)
                    if frames is not None:
                        yield from frames
                return  # gone, cancelled, or a later run that has its own stream
        time.sleep(POLL_SECONDS)
        polls += 1
        if polls % max(1, round(core.ping_seconds / POLL_SECONDS)) == 0:
            yield PING
