"""The queue engine: huey carries job ids to whichever process has a free worker.

huey stores its queue in SQLite (a file in the instance folder) or, with
`REDIS_URL`, in Redis, so that workers on any host take from one queue. Its
delivery is at-most-once; that is enough, because a task carries only a job id and
the job's state of record is Sluice's `jobs` table (see runner.py's reaper).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import redis
from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)


def queue_file(name: str, database_url: str, instance_path: str) -> str:
    """Where a SQLite queue lives: beside a SQLite database (`sluice.db` ->
    `sluice.<name>.queue.db`), else in the instance folder (also when the database's
    folder is missing: /readyz then reports the database, not a failed start)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and os.path.isdir(os.path.dirname(os.path.abspath(url.database))):
        base, _ = os.path.splitext(url.database)
        return f"{base}.{name}.queue.db"
    return os.path.join(instance_path, f"{name}.queue.db")


class SluiceRedisHuey(RedisHuey):
    """huey on Redis, for which Redis going away is an expected pause, not a crash: its
    workers log one line and try again (huey logs a traceback per attempt)."""

    def dequeue(self) -> Any:
        try:
            return super().dequeue()
        except redis.exceptions.ConnectionError as exc:
            _unreachable(exc)
            return None

    def read_schedule(self, timestamp: Any = None) -> list[Any]:
        try:
            return super().read_schedule(timestamp)
        except redis.exceptions.ConnectionError as exc:
            _unreachable(exc)
            return []


def _unreachable(exc: Exception) -> None:
    logger.warning("job queue: Redis is unreachable (%s); trying again", exc)
    time.sleep(1.0)


def make_queue(name: str, redis_url: str | None, database_url: str,
               instance_path: str) -> Huey:
    """A huey instance for this app: Redis when there is one, else a SQLite file."""
    if redis_url:
        # The pool names its connections as they open. (huey's own client_name would
        # connect at once, so a worker could not start while Redis is away.)
        pool = redis.ConnectionPool.from_url(redis_url,
                                             client_name=f"sluice-jobs-{os.getpid()}")
        return SluiceRedisHuey(name, connection_pool=pool, results=False, utc=True,
                               blocking=True, read_timeout=1)
    return SqliteHuey(name, filename=queue_file(name, database_url, instance_path),
                      results=False, utc=True)


class HostedConsumer(Consumer):
    """huey's consumer inside a process that handles its own signals (a gunicorn worker,
    the `worker` command): it never installs signal handlers of its own."""

    def _set_signal_handlers(self) -> None:
        pass


def start_consumer(queue: Huey, workers: int) -> HostedConsumer:
    """Start `workers` worker threads (greenlets under gevent) and huey's scheduler."""
    consumer = HostedConsumer(queue, workers=workers, worker_type="thread", periodic=False,
                              initial_delay=0.05, backoff=1.5, max_delay=1.0,
                              check_worker_health=True, shutdown_timeout=5.0)
    consumer.start()
    return consumer


def register(queue: Huey, name: str, function: Callable[[str], Any]) -> Any:
    """`function(job_id)` as a task of `queue`; calling the result enqueues it."""
    def task(job_id: str) -> None:
        try:
            function(job_id)
        except Exception:  # the reaper retries; huey must not drop the worker
            logger.exception("task %s for job %s failed", name, job_id)
    return queue.task(name=name)(task)
