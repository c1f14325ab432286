"""The reaper: every process that runs jobs renews its jobs' leases and repairs what a
dead worker or a lost queue message left behind.

- a running job whose lease lapsed (its worker died): ended from its stored answer
  if that answer is complete, else queued again (it runs anew on a new stream);
- a queued job nobody took for a while (huey lost the message): queued again;
- a due webhook nobody is delivering: queued again.
Every repair is a conditional UPDATE, so processes reaping at once do each one once.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from ..storage.models import utcnow
from ..storage.work import Job
from ..streaming.leases import lease_until
from ..streaming.periodic import Periodic
from .runner import JobRunner

logger = logging.getLogger(__name__)

# A queued job or a due delivery that nobody took within this long is queued again.
GRACE = timedelta(seconds=15)


class JobKeeper(Periodic):
    name = "sluice-jobs"
    failure = "job upkeep failed; will try again"

    def __init__(self, runner: JobRunner, interval: float,
                 health_check: object | None = None) -> None:
        super().__init__(interval)
        self.runner = runner
        self.health_check = health_check  # the consumer's: replaces dead worker threads

    def tick(self) -> None:
        self.renew()
        for job_id in self._lapsed():
            self.recover(job_id)
        for job_id in self._overdue(Job.status == "queued", Job.next_attempt_at,
                                    "next_attempt_at"):
            self.runner.enqueue_run(job_id, 0)
        for job_id in self._overdue(Job.webhook_status == "pending", Job.next_delivery_at,
                                    "next_delivery_at"):
            self.runner.enqueue_delivery(job_id, 0)
        if callable(self.health_check):
            self.health_check()

    def renew(self) -> None:
        mine = self.runner.local_jobs()
        if mine:
            with self.runner.db.transaction() as session:
                session.execute(update(Job).where(Job.id.in_(mine), Job.status == "running")
                                .values(lease_expires_at=lease_until(
                                    self.runner.settings.lease_seconds)))

    def _lapsed(self) -> list[str]:
        mine = set(self.runner.local_jobs())
        with self.runner.db.transaction() as session:
            lapsed = session.scalars(select(Job.id).where(
                Job.status == "running", Job.lease_expires_at < utcnow()).limit(100))
            return [job_id for job_id in lapsed if job_id not in mine]

    def _overdue(self, condition: Any, due: Any, column: str) -> list[str]:
        """Jobs due for longer than GRACE, each pushed GRACE further in one UPDATE (so one
        process, the one whose UPDATE took it, queues it again once per GRACE)."""
        now = utcnow()
        with self.runner.db.transaction() as session:
            taken = list(session.scalars(
                update(Job).where(condition, or_(due.is_(None), due < now - GRACE))
                .values({column: now}).returning(Job.id)))
        if taken:
            logger.info("queued again after %s: %s", column, ", ".join(taken))
        return taken

    def recover(self, job_id: str) -> None:
        """A running job whose worker is gone: end it from its answer if that finished,
        else run it again."""
        with self.runner.db.transaction() as session:
            job = session.get(Job, job_id)
            if job is None or job.status != "running" or job.lease_expires_at is None \
                    or job.lease_expires_at >= utcnow():
                return
            message_id, run_id = job.message_id, job.operation_run_id
        if self.runner.end_from_answer(job_id, message_id if run_id is None else None,
                                       run_id) is not None:
            return
        logger.warning("job %s: its worker is gone; queued again", job_id)
        self.runner.requeue(job_id)
