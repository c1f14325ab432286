"""What the job endpoints do besides submitting: read, list, cancel, redeliver."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..auth import Identity
from ..errors import ApiError
from ..web.params import one_of
from ..storage.documents import Document
from ..storage.models import utcnow
from ..storage.work import Job, OperationRun, WebhookAttempt
from ..streaming.resume import stop_stream
from .runner import JobRunner

JOB_STATUSES = ("queued", "running", "complete", "failed", "cancelled")
CANCELLED = {"code": "cancelled", "retryable": False,
             "message": "The job was cancelled before it started."}
INDEXING_CANCELLED = "Indexing was cancelled before it began; upload the file again."


def get_job(session: Session, user: Identity, job_id: str) -> Job:
    """The job, if it is `user`'s: another user's is not found, exactly like none."""
    job = session.get(Job, job_id)
    if job is None or job.user_id != user.id:
        raise ApiError(404, "job_not_found", f"There is no job {job_id!r}.")
    return job


def job_view(session: Session, job: Job) -> dict[str, Any]:
    """The job with every delivery attempt of its webhook."""
    view = job.to_dict()
    attempts = session.scalars(select(WebhookAttempt).where(WebhookAttempt.job_id == job.id)
                               .order_by(WebhookAttempt.attempt))
    view["webhook"]["deliveries"] = [attempt.to_dict() for attempt in attempts]
    return view


def list_jobs(session: Session, user: Identity, status: str | None, limit: int) -> list[Job]:
    status = one_of(status, JOB_STATUSES, "status")
    query = select(Job).where(Job.user_id == user.id)
    if status is not None:
        query = query.where(Job.status == status)
    return list(session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit)))


def cancel_job(session: Session, runner: JobRunner, user: Identity, job_id: str) -> Job:
    """Stop a job: a queued one ends now (its webhook says so), a running one's answer is
    cancelled wherever it runs; an ended one is left as it is."""
    job = get_job(session, user, job_id)
    if job.status == "queued":
        if runner.end(job.id, "cancelled", None, CANCELLED, from_status=("queued",)):
            _end_what_it_would_have_made(session, job)
    elif job.status == "running":
        stop_stream(runner.core, job.stream_id, "streaming")
    session.expire_all()
    return get_job(session, user, job_id)


def _end_what_it_would_have_made(session: Session, job: Job) -> None:
    """A queued job cancelled: its operation run ends `cancelled`, and its document
    `failed` (never indexed, its upload dropped), instead of staying queued or
    processing forever."""
    if job.operation_run_id:
        session.execute(update(OperationRun)
                        .where(OperationRun.id == job.operation_run_id,
                               OperationRun.status == "queued")
                        .values(status="cancelled", finish_reason="cancelled",
                                updated_at=utcnow()))
    elif job.kind == "document":
        session.execute(update(Document)
                        .where(Document.id == job.options.get("document_id"),
                               Document.status == "processing")
                        .values(status="failed", upload=None, error=INDEXING_CANCELLED))
    session.commit()


def redeliver(session: Session, runner: JobRunner, user: Identity, job_id: str) -> Job:
    """Send an ended job's webhook again (after a receiver was fixed), under the same
    `webhook-id`; attempts go on counting, so a failed redelivery is not retried once
    the schedule is used up."""
    job = get_job(session, user, job_id)
    if job.finished_at is None:
        raise ApiError(409, "job_not_finished", "The job has not ended yet; its webhook is "
                       "sent when it does.")
    if job.webhook_status == "pending":
        return job
    job.webhook_status, job.next_delivery_at = "pending", utcnow()
    session.commit()
    runner.enqueue_delivery(job.id, 0)
    return job
