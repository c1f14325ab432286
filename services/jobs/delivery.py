"""Delivering a finished job's webhook: signed, SSRF-checked, retried, every attempt kept.

One process at a time delivers a job (a short delivery lease). Each attempt is
signed anew with the user's current secret, under the job's one `webhook-id`, so a
receiver recognises a retry. A failed attempt is retried after the next delay of
SLUICE_WEBHOOK_RETRY_SECONDS (with jitter, at least the receiver's `Retry-After`);
after the last one, or an answer that retrying cannot fix, the webhook is failed.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from ..storage.models import utcnow
from ..storage.work import Job, WebhookAttempt
from ..webhooks import (DeliveryAttempt, UrlRefused, check_url, next_delay, post, resolve,
                        signature_headers)
from .runner import JobRunner
from .secrets import signing_secrets

logger = logging.getLogger(__name__)

# Longer than one attempt can take (the sender's total timeout), so a live delivery is
# never taken over; a dead one is, this long after it began.
DELIVERY_LEASE = timedelta(seconds=60)


def _claim(runner: JobRunner, job_id: str) -> bool:
    now = utcnow()
    with runner.db.transaction() as session:
        return session.execute(
            update(Job).where(Job.id == job_id, Job.webhook_status == "pending",
                              or_(Job.delivery_lease_expires_at.is_(None),
                                  Job.delivery_lease_expires_at < now))
            .values(delivery_lease_expires_at=now + DELIVERY_LEASE)).rowcount == 1


def _payload(runner: JobRunner, job_id: str) -> tuple[str, str, list[str], bytes, int]:
    """(url, webhook id, secrets, body, attempt number) of the next attempt."""
    for _ in range(2):  # a concurrent first delivery may create the secret meanwhile
        try:
            with runner.db.transaction() as session:
                job = session.get(Job, job_id)
                assert job is not None
                secrets = signing_secrets(session, job.user_id)
                body = json.dumps({"job": job.to_dict()}, separators=(",", ":")).encode()
                return job.callback_url, job.webhook_id, secrets, body, job.webhook_attempts + 1
        except IntegrityError:
            continue
    raise RuntimeError("could not read the user's signing secret")


def _attempt(url: str, webhook_id: str, secrets: list[str], body: bytes,
             allow_private: bool) -> DeliveryAttempt:
    try:
        target = resolve(check_url(url, allow_private), allow_private)
    except UrlRefused as exc:
        return DeliveryAttempt(status_code=None, duration_ms=0, response_excerpt="",
                               error=f"refused: {exc}", retry_after=None, delivered=False,
                               retryable=exc.retryable)
    headers = signature_headers(secrets, webhook_id, int(time.time()), body)
    return post(target, body, headers)


def deliver(runner: JobRunner, job_id: str) -> None:
    """One delivery attempt of a job whose webhook is due, if no one else is making it."""
    if not _claim(runner, job_id):
        return
    url, webhook_id, secrets, body, number = _payload(runner, job_id)
    result = _attempt(url, webhook_id, secrets, body, runner.settings.allow_private)
    now = utcnow()
    values: dict[str, object] = {"webhook_attempts": number, "delivery_lease_expires_at": None}
    delay = None
    if result.delivered:
        values.update(webhook_status="delivered", delivered_at=now, next_delivery_at=None)
    else:
        if result.retryable:
            delay = next_delay(number, runner.settings.retry_seconds, result.retry_after)
        if delay is None:
            values.update(webhook_status="failed", next_delivery_at=None)
        else:
            values["next_delivery_at"] = now + timedelta(seconds=delay)
    with runner.db.transaction() as session:
        session.add(WebhookAttempt(job_id=job_id, attempt=number, attempted_at=now,
                                   status_code=result.status_code,
                                   duration_ms=result.duration_ms, error=result.error,
                                   response_excerpt=result.response_excerpt or None))
        session.execute(update(Job).where(Job.id == job_id).values(**values))
    logger.info("job %s webhook attempt %d: %s", job_id, number,
                "delivered" if result.delivered else result.error or result.status_code)
    if delay is not None:
        runner.enqueue_delivery(job_id, delay)
