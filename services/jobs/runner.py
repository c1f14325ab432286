"""Running jobs: claim one, produce its answer through the streaming core, record the end.

A job moves queued → running → complete | failed | cancelled in the `jobs` table,
and each move is a conditional UPDATE, so only one process makes it. A running job
is leased by its process; if the process dies, the lease lapses and the reaper
(keeper.py) queues the job again: it runs once more, on a new stream, and its
webhook (one `webhook-id` whatever happens) is sent when it ends.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from .. import chat
from ..auth import Identity
from ..documents.indexing_job import run_document_job
from ..errors import ApiError
from ..operations import runs as operation_runs
from ..operations.definitions import Operation
from ..providers import ProviderRegistry
from ..storage import Database, Message
from ..storage.models import new_id, utcnow
from ..storage.work import Job, OperationRun
from ..streaming import Streaming
from ..streaming.leases import lease_until
from .progress import job_status

logger = logging.getLogger(__name__)

# An answer's end -> its job's.
ENDS = {"complete": "complete", "error": "failed", "cancelled": "cancelled"}
WORKER_LOST = {"code": "worker_lost", "retryable": True,
               "message": "The workers running this job stopped before it was done, "
                          "too many times."}

INDEXING_FAILED = {"code": "internal_error", "retryable": False,
                   "message": "Indexing the document failed on the server."}


@dataclass(frozen=True)
class JobSettings:
    lease_seconds: float
    max_attempts: int  # runs of one job before it fails (its workers keep dying)
    concurrency: int  # jobs one process runs at once
    allow_private: bool
    retry_seconds: tuple[float, ...]


class JobRunner:
    """Claims and runs this process's jobs; `enqueue_*` are set by the queue (queue.py)."""

    def __init__(self, db: Database, core: Streaming, providers: ProviderRegistry,
                 operations: dict[str, Operation], settings: JobSettings) -> None:
        self.db, self.core, self.providers, self.operations = db, core, providers, operations
        self.settings = settings
        self.enqueue_run: Callable[[str, float], None] = lambda job_id, delay: None
        self.enqueue_delivery: Callable[[str, float], None] = lambda job_id, delay: None
        self.slots = threading.BoundedSemaphore(settings.concurrency)
        self._local: dict[str, str] = {}  # job id -> stream id, for the ones running here
        self._lock = threading.Lock()

    def local_jobs(self) -> list[str]:
        with self._lock:
            return list(self._local)

    # --- a task: run a job ------------------------------------------------------------

    def run(self, job_id: str) -> None:
        """The queue's task: wait for a free slot, claim the job, start its answer."""
        self.slots.acquire()
        try:
            started = self._claim_and_start(job_id)
        except Exception:
            self.slots.release()
            raise
        if not started:
            self.slots.release()

    def _claim_and_start(self, job_id: str) -> bool:
        with self.db.transaction() as session:
            claimed = session.execute(
                update(Job).where(Job.id == job_id, Job.status == "queued")
                .values(status="running", attempts=Job.attempts + 1, updated_at=utcnow(),
                        lease_expires_at=lease_until(self.settings.lease_seconds))).rowcount
            job = session.get(Job, job_id) if claimed == 1 else None
            if job is None:
                return False  # taken by another worker, cancelled, or gone
            session.expunge(job)
        if job.attempts > self.settings.max_attempts:
            self.end(job_id, "failed", None, WORKER_LOST)
            return False
        stream_id = job.stream_id if job.attempts == 1 else new_id("str")
        try:
            self._start(job, stream_id)
        except ApiError as exc:
            if exc.code == "thread_busy":  # after the answer streaming there now
                self.requeue(job_id, delay=2.0, attempted=False)
            else:
                self.end(job_id, "failed", None, {"code": exc.code, "message": exc.message,
                                                  "retryable": False})
            return False
        return True

    def _start(self, job: Job, stream_id: str) -> None:
        prelude = (job_status(job, "queued", "The job was queued."),
                   job_status(job, "connecting", "A worker took the job.",
                              job_status_value="running", attempt=job.attempts))
        with self._lock:
            self._local[job.id] = stream_id
        on_end = self._ended_here(job.id)
        if job.kind == "document":
            self._index_document(job, stream_id, prelude, on_end)
            return
        on_finish = self._finisher(job.id, stream_id)
        session = self.db.sessions()
        try:
            user = Identity(job.user_id, "", "job")
            if job.kind == "message":
                request = session.get(Message, job.request_message_id)
                if request is None:
                    raise ApiError(404, "thread_not_found", "The job's thread was deleted.")
                _, message_id = chat.answer_request(session, self.providers, self.core, user,
                                                    request, job.options, stream_id, on_end,
                                                    on_finish, prelude)
                self._link(job.id, stream_id, message_id=message_id)
            else:
                run = self._operation_run(session, job, stream_id)
                prepared = operation_runs.prepare(self.operations, self.providers, user,
                                                  run.operation, {"input": run.input,
                                                                  "model": job.options.get("model")})
                session.commit()
                self._link(job.id, stream_id, operation_run_id=run.id)
                operation_runs.produce(self.core, run, prepared, on_end, on_finish, prelude)
        except BaseException:
            session.rollback()
            with self._lock:
                self._local.pop(job.id, None)
            raise
        finally:
            session.close()

    def _index_document(self, job: Job, stream_id: str, prelude: tuple[Any, ...],
                        on_end: Callable[[], None]) -> None:
        """A `document` job runs here, in the queue's worker: no provider, no run, only
        the index, written with progress on the job's stream; it has no webhook."""
        try:
            self._link(job.id, stream_id)
            status, result, error = run_document_job(self.db, self.core.log, job, stream_id,
                                                     prelude, self.providers.embedder)
        except Exception:  # noqa: BLE001 - the job must end, whatever broke
            logger.exception("job %s: indexing its document failed", job.id)
            status, result, error = "failed", None, INDEXING_FAILED
        finally:
            on_end()
        self.end(job.id, status, result, error)

    def _operation_run(self, session: Session, job: Job, stream_id: str) -> OperationRun:
        """The run this attempt fills: the queued one, or (after a lost worker) a fresh
        copy, so the earlier attempt's partial text stays as it was stored."""
        run = session.get(OperationRun, job.operation_run_id)
        if run is None:
            raise ApiError(404, "run_not_found", "The job's operation run is gone.")
        if run.status != "queued":
            run = OperationRun(id=new_id("opr"), user_id=run.user_id, operation=run.operation,
                               input=run.input, model=run.model, content="")
            session.add(run)
        run.status, run.stream_id = "streaming", stream_id
        run.lease_expires_at = lease_until(self.core.lease_seconds)
        return run

    def _link(self, job_id: str, stream_id: str, **links: str) -> None:
        with self.db.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id)
                            .values(stream_id=stream_id, updated_at=utcnow(), **links))

    def _ended_here(self, job_id: str) -> Callable[[], None]:
        def ended() -> None:
            with self._lock:
                self._local.pop(job_id, None)
            self.slots.release()
        return ended

    # --- the end of a run -------------------------------------------------------------

    def _finisher(self, job_id: str, stream_id: str) -> Callable[[dict[str, Any]], None]:
        """What the run calls before its `done`: record the job's end, say it is delivering."""
        def finish(done: dict[str, Any]) -> None:
            if done["status"] not in ENDS:  # interrupted: this server is going away
                self.requeue(job_id)
                return
            status = self.end_from_answer(job_id, done["message_id"], done.get("run_id"))
            if status is not None:
                self.core.log.append(stream_id, "status", {
                    "stage": "delivering", "job_id": job_id, "job_status": status,
                    "message": "Sending the result to the callback URL."})
        return finish

    def end_from_answer(self, job_id: str, message_id: str | None,
                        run_id: str | None) -> str | None:
        """End the job as its stored, finished answer did: a chat job's result is the
        assistant message, an operation's its result. Returns the job's status, or None if
        the answer has not finished (or the job had ended already)."""
        with self.db.transaction() as session:
            answer = session.get(Message, message_id) if message_id else \
                session.get(OperationRun, run_id) if run_id else None
            if answer is None or answer.status not in ENDS:
                return None
            status, error = ENDS[answer.status], answer.error
            result = answer.to_dict() if isinstance(answer, Message) else answer.result
        return status if self.end(job_id, status, result, error) else None

    def end(self, job_id: str, status: str, result: Any, error: Any,
            from_status: tuple[str, ...] = ("running",)) -> bool:
        """Record a job's end and make its webhook due now (a job without a callback URL,
        such as a `document` job, has none); False if it had ended already."""
        now = utcnow()
        has_webhook = Job.callback_url != ""
        with self.db.transaction() as session:
            ended = session.execute(
                update(Job).where(Job.id == job_id, Job.status.in_(from_status))
                .values(status=status, result=result, error=error, finished_at=now,
                        lease_expires_at=None, updated_at=now,
                        webhook_status=case((has_webhook, "pending"), else_="none"),
                        next_delivery_at=case((has_webhook, now), else_=None))
                .returning(Job.callback_url)).first()
        if ended is not None and ended.callback_url:
            self.enqueue_delivery(job_id, 0)
        return ended is not None

    def requeue(self, job_id: str, delay: float = 0.0, attempted: bool = True) -> None:
        """Back to the queue: its worker is going away, or (not `attempted`: no run was
        started, which does not count) its thread is busy."""
        values: dict[str, Any] = {"status": "queued", "lease_expires_at": None,
                                  "updated_at": utcnow(),
                                  "next_attempt_at": utcnow() + timedelta(seconds=delay)}
        if not attempted:
            values["attempts"] = Job.attempts - 1
        with self.db.transaction() as session:
            session.execute(update(Job).where(Job.id == job_id, Job.status == "running")
                            .values(**values))
        self.enqueue_run(job_id, delay)
