"""Accepting a job: check everything, store the request and the job in one transaction,
then hand the job's id to the queue and answer `202` at once.

An `Idempotency-Key` makes a retried POST safe: the same key and body answer the
job made the first time; the same key with another body is a `409`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import chat
from ..auth import Identity
from ..errors import ApiError
from ..operations import runs as operation_runs
from ..storage.models import new_id
from ..storage.work import Job
from ..webhooks import UrlRefused, check_url, new_message_id, resolve
from .runner import JobRunner

MAX_KEY_LENGTH = 255


def check_callback(url: Any, allow_private: bool) -> str:
    """The callback URL, or `400 invalid_callback_url`: not http(s), or naming (or
    resolving now to) a private, loopback, link-local or metadata address. A name that
    cannot be resolved yet is accepted; each delivery attempt checks it again."""
    if not isinstance(url, str) or not url:
        raise ApiError(400, "invalid_callback_url", "'callback_url' must be an http(s) URL.",
                       param="callback_url")
    try:
        resolve(check_url(url, allow_private), allow_private)
    except UrlRefused as exc:
        if not exc.retryable:
            raise ApiError(400, "invalid_callback_url", f"'callback_url' is refused: {exc}",
                           param="callback_url") from None
    return url


def _request_hash(path: str, body: dict[str, Any]) -> str:
    canonical = json.dumps([path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _earlier_job(session: Session, user: Identity, key: str, digest: str) -> Job | None:
    """The job an earlier POST with this key made, if any; 409 if its body differed."""
    job = session.scalars(select(Job).where(Job.user_id == user.id,
                                            Job.idempotency_key == key)).first()
    if job is not None and job.request_hash != digest:
        raise ApiError(409, "idempotency_conflict", "This Idempotency-Key was used with "
                       "another request body; use a new key for a new request.")
    return job


def _check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to "
                       f"{MAX_KEY_LENGTH} printable characters.")
    return key


def _submit(session: Session, runner: JobRunner, user: Identity, key: str | None, path: str,
            body: dict[str, Any], store: Callable[[], Job]) -> tuple[Job, bool]:
    """(the job, whether it is new), queued if new. `store` adds the request's rows and
    the job."""
    key = _check_key(key)
    digest = _request_hash(path, body)
    if key is not None and (job := _earlier_job(session, user, key, digest)) is not None:
        return job, False
    job = store()
    job.idempotency_key, job.request_hash = key, digest
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # the same key, committed by a concurrent POST just now
        if key is None or (job := _earlier_job(session, user, key, digest)) is None:
            raise
        return job, False
    runner.enqueue_run(job.id, 0)
    return job, True


def _new_job(user: Identity, kind: str, callback_url: str, stream_id: str,
             options: dict[str, Any], **links: Any) -> Job:
    return Job.queued(user.id, kind, stream_id, options, new_message_id(), callback_url,
                      **links)


def submit_message(session: Session, runner: JobRunner, user: Identity, thread_id: str,
                   body: dict[str, Any], key: str | None, path: str) -> tuple[Job, bool]:
    """A chat job: the request's messages are stored now, the answer comes later."""
    callback = check_callback(body.get("callback_url"), runner.settings.allow_private)
    providers = runner.providers

    def store() -> Job:
        stored = chat.store_request(session, providers, runner.core.tools, user, thread_id,
                                    body)
        job = _new_job(user, "message", callback, new_id("str"),
                       {"model": body.get("model"), "tools": body.get("tools"),
                        "limits": body.get("limits")},
                       thread_id=thread_id, request_message_id=stored[-1].id)
        session.add(job)
        return job
    return _submit(session, runner, user, key, path, body, store)


def submit_operation(session: Session, runner: JobRunner, user: Identity, name: str,
                     body: dict[str, Any], key: str | None, path: str) -> tuple[Job, bool]:
    """An operation job: the run is stored `queued` now and started by a worker."""
    callback = check_callback(body.get("callback_url"), runner.settings.allow_private)
    prepared = operation_runs.prepare(runner.operations, runner.providers, user, name, body)

    def store() -> Job:
        run = operation_runs.store_run(session, user, prepared, "queued")
        session.flush()
        job = _new_job(user, "operation", callback, run.stream_id,
                       {"model": body.get("model"), "name": name},
                       operation_run_id=run.id)
        session.add(job)
        return job
    return _submit(session, runner, user, key, path, body, store)
