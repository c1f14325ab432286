"""A job's progress as its stream tells it: `status` events (queued, connecting, delivering)."""
from __future__ import annotations

from typing import Any

from ..storage.work import Job


def job_status(job: Job, stage: str, message: str, job_status_value: str | None = None,
               **details: Any) -> tuple[str, dict[str, Any]]:
    """A `status` event about the job (stage `queued`, `connecting`, `delivering`)."""
    return ("status", {"stage": stage, "message": message, "job_id": job.id,
                       "job_status": job_status_value or stage, **details})
