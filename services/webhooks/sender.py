"""One delivery attempt: a POST to a pinned address, bounded in time and in size.

The exchange itself (`pinned_http`) connects only to the address `guard.resolve`
checked, never follows a redirect and uses no proxy; this module turns its answer
into a `DeliveryAttempt`: delivered, or why not and whether to try again.

Whatever happens on the network, `post` answers with a `DeliveryAttempt`; it
raises only for a programming error.
"""
from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone

from .guard import PinnedTarget
from .pinned_http import Answer, ExchangeFailed, elapsed_ms, exchange

EXCERPT_CHARACTERS = 500
MAX_RETRY_AFTER = 6 * 3600.0
USER_AGENT = "Sluice-Webhooks/1"


@dataclass(frozen=True)
class DeliveryAttempt:
    """How one attempt went, as the delivery's history keeps it."""

    status_code: int | None  # None: no answer came
    duration_ms: int
    response_excerpt: str  # the start of the receiver's answer, for the user to read
    error: str | None  # why the attempt failed, in words; None once delivered
    retry_after: float | None  # seconds the receiver asked to wait, at most six hours
    delivered: bool  # the receiver answered 2xx
    retryable: bool  # trying again later may succeed


def post(pinned: PinnedTarget, body: bytes, headers: Mapping[str, str], *,
         connect_timeout: float = 5.0, read_timeout: float = 10.0,
         total_timeout: float = 15.0, max_response_bytes: int = 65536) -> DeliveryAttempt:
    """POST `body` to the pinned address once and report how it went."""
    started = time.monotonic()
    try:
        answer = exchange(pinned, "POST", body, _request_headers(headers),
                          connect_timeout=connect_timeout, read_timeout=read_timeout,
                          total_timeout=total_timeout, max_body_bytes=max_response_bytes)
    except ExchangeFailed as exc:
        return DeliveryAttempt(
            status_code=None, duration_ms=elapsed_ms(started), response_excerpt="",
            error=str(exc), retry_after=None, delivered=False, retryable=True)
    return _judge(answer, elapsed_ms(started))


def _request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's headers with Sluice's `User-Agent` unless the caller named one (the
    exchange sets `Host` to the target's, whatever the caller gave)."""
    names = {name.lower() for name in headers}
    merged = {} if "user-agent" in names else {"User-Agent": USER_AGENT}
    merged.update(headers)
    return merged


def _judge(answer: Answer, duration_ms: int) -> DeliveryAttempt:
    """The attempt's outcome from the receiver's status: 2xx is delivered; 408, 429,
    5xx and redirects are worth another try; any other 4xx is not."""
    status = answer.status
    retry_after = parse_retry_after(answer.headers.get("Retry-After"))
    excerpt = answer.body.decode("utf-8", errors="replace")[:EXCERPT_CHARACTERS]
    delivered = 200 <= status < 300
    if delivered:
        error = None
    elif 300 <= status < 400:
        location = _shortened(answer.headers.get("Location") or "none")
        error = f"redirects are not followed (Location: {location})"
    else:
        error = f"the receiver answered {status} {_shortened(answer.reason)}".rstrip()
    retryable = not delivered and (not 400 <= status < 500 or status in (408, 429))
    return DeliveryAttempt(status_code=status, duration_ms=duration_ms,
                           response_excerpt=excerpt, error=error, retry_after=retry_after,
                           delivered=delivered, retryable=retryable)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """The seconds a `Retry-After` header asks to wait (it holds seconds or an HTTP
    date), at most six hours; None if there is none or it cannot be read."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), MAX_RETRY_AFTER))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _shortened(text: str, limit: int = 200) -> str:
    """Text a receiver sent, cut to a length fit for an error message."""
    return text if len(text) <= limit else text[:limit] + "…"
