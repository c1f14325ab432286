"""Background jobs: answers and operations run by a worker, their results sent as webhooks.

`init_app` builds the runner and its queue; a serving process starts its worker with
`start_worker` (gunicorn's workers do, when SLUICE_JOB_WORKERS > 0), and
`flask --app wsgi worker` runs a process that only works jobs.
"""
from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from typing import Any

import click
import redis
from flask import Flask, current_app

from ..operations import operations
from ..providers import registry
from ..storage import database
from ..streaming import streaming
from .delivery import deliver
from .keeper import JobKeeper
from .queue import HostedConsumer, make_queue, register, start_consumer
from .runner import JobRunner, JobSettings

EXTENSION = "sluice.jobs"
logger = logging.getLogger(__name__)

__all__ = ["JobRunner", "init_app", "jobs", "start_worker"]


class Jobs:
    """The app's job runner, its queue, and (once started) its consumer and keeper."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        core = streaming(app)
        self.runner = JobRunner(database(app), core, registry(app), operations(app),
                                JobSettings(lease_seconds=config["SLUICE_LEASE_SECONDS"],
                                            max_attempts=config["SLUICE_JOB_ATTEMPTS"],
                                            concurrency=config["SLUICE_JOB_CONCURRENCY"],
                                            allow_private=config["SLUICE_WEBHOOK_ALLOW_PRIVATE"]
                                            == "on",
                                            retry_seconds=config["SLUICE_WEBHOOK_RETRY_SECONDS"]))
        self.queue = make_queue(config["SLUICE_JOB_QUEUE"], config["REDIS_URL"],
                                config["DATABASE_URL"], app.instance_path)
        run_task = register(self.queue, "sluice.run_job", self.runner.run)
        delivery_task = register(self.queue, "sluice.deliver",
                                 lambda job_id: deliver(self.runner, job_id))
        self.runner.enqueue_run = lambda job_id, delay: _enqueue(run_task, job_id, delay)
        self.runner.enqueue_delivery = lambda job_id, delay: _enqueue(delivery_task, job_id, delay)
        self.consumer: HostedConsumer | None = None
        self.keeper: JobKeeper | None = None
        self.workers = config["SLUICE_JOB_WORKERS"]
        self.keeper_seconds = min(1.0, config["SLUICE_LEASE_SECONDS"] / 3)

    def start(self, workers: int | None = None) -> None:
        """Take jobs in this process: huey's workers, and the keeper that reaps."""
        if self.consumer is not None:
            return
        self.consumer = start_consumer(self.queue, workers or self.workers)
        self.keeper = JobKeeper(self.runner, self.keeper_seconds,
                                health_check=self.consumer.check_worker_health)
        self.keeper.start()

    def stop(self) -> None:
        """Take no more jobs (running answers are drained by the streaming core)."""
        if self.keeper is not None:
            self.keeper.stop()
        if self.consumer is not None:
            self.consumer.stop_flag.set()

    def close(self) -> None:
        """Stop, wait for the keeper's and workers' current rounds, and close the queue's
        connections (tests; the app is going away)."""
        self.stop()
        if self.keeper is not None:
            self.keeper.stop(wait=5.0)
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
        self.queue.storage.close()  # SQLite's connection
        pool = getattr(self.queue.storage, "pool", None)  # Redis's
        if pool is not None:
            pool.disconnect()


def _enqueue(task: Any, job_id: str, delay: float) -> None:
    """Queue a task; if the queue is unreachable (Redis away), the job's row says what is
    due and the reaper queues it again later, so the caller is not failed for it."""
    try:
        if delay > 0:
            task.schedule(args=(job_id,), delay=delay)
        else:
            task(job_id)
    except (redis.exceptions.ConnectionError, sqlite3.Error) as exc:
        logger.warning("job %s: the queue is unreachable (%s); the reaper queues it later",
                       job_id, exc)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Jobs(app)
    app.cli.add_command(_worker_command)


def jobs(app: Flask | None = None) -> Jobs:
    return (app or current_app).extensions[EXTENSION]


def start_worker(app: Flask) -> None:
    """Work jobs in this serving process too, if SLUICE_JOB_WORKERS says so (> 0); on
    SIGTERM it takes no more (call after the streaming core's graceful shutdown)."""
    part = jobs(app)
    if part.workers <= 0:
        return
    part.start()
    previous: Any = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        part.stop()
        if callable(previous):
            previous(signum, frame)
    signal.signal(signal.SIGTERM, on_sigterm)


@click.command("worker")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Queue workers (threads); default SLUICE_JOB_WORKERS, at least 1.")
def _worker_command(workers: int | None) -> None:
    """Run jobs and deliver webhooks until SIGTERM or Ctrl-C (no web server)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    core, stopping = streaming(app), threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    jobs(app).start(workers or max(1, jobs(app).workers))
    click.echo(f"Sluice worker: taking jobs from queue {app.config['SLUICE_JOB_QUEUE']!r}")
    stopping.wait()
    click.echo("Sluice worker: stopping; running answers get 20 s to finish")
    jobs(app).stop()
    core.draining.set()
    core.runs.drain(20)
