"""Rate limits and quotas: requests per minute, and streams open at once.

Both are counted per API key and per user, with limits set globally
(`SLUICE_KEY_RPM`, `SLUICE_USER_RPM`, `SLUICE_KEY_MAX_STREAMS`,
`SLUICE_USER_MAX_STREAMS`; 0 = no limit) and per key (its `rpm`, `max_streams`).
Without `REDIS_URL` the counts live in this process; with it, in Redis, so the limits
hold across every worker on every host.

- Requests per minute use the `limits` library's moving window: every request a
  user or key makes in the last 60 s counts, whichever worker served it.
- Open streams are slots: a sorted set per user and per key of the stream ids that
  hold one, each with an expiry (the longest an answer may take), taken before
  anything is stored and given back when the answer ends. A worker killed
  mid-answer cannot give its slots back; they lapse at their expiry.

Over a limit is `429` with `Retry-After` and OpenAI's `x-ratelimit-*` headers, which
the OpenAI SDK honours when it retries.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from flask import Flask, Response, current_app, g
from limits import RateLimitItemPerMinute, storage, strategies

from .auth import Identity
from .errors import ApiError
from .metrics import count_rate_limited
from .streaming import streaming

EXTENSION = "sluice.ratelimit"
# Sign-in attempts a minute for one user name, whatever the limits above: a password
# cannot be guessed at the server's speed, and a user locked out waits a minute.
SIGN_IN_ATTEMPTS = 10
REFUSED_HINT = "Slow down: wait for the time in Retry-After, then send it again."


def _reset_text(seconds: float) -> str:
    """OpenAI's way of writing a reset time: `1s`, `6m0s`."""
    seconds = max(1, math.ceil(seconds))
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


class RequestLimits:
    """Requests per minute for a user and for a key, on a moving window."""

    def __init__(self, uri: str, user_rpm: int, key_rpm: int) -> None:
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(uri))
        self.user_rpm, self.key_rpm = user_rpm, key_rpm

    def hit(self, user_id: str, key_id: str | None, key_rpm: int | None) -> dict[str, str]:
        """Count one request; its `x-ratelimit-*` headers, or a 429 over either limit."""
        checks = []
        if key_id is not None and (key_rpm or self.key_rpm):
            checks.append((RateLimitItemPerMinute(key_rpm or self.key_rpm), "key", key_id))
        if self.user_rpm:
            checks.append((RateLimitItemPerMinute(self.user_rpm), "user", user_id))
        headers: dict[str, str] = {}
        for item, kind, identifier in checks:
            allowed = self.limiter.hit(item, kind, identifier)
            stats = self.limiter.get_window_stats(item, kind, identifier)
            wait = max(0.0, stats.reset_time - time.time())
            headers = {"x-ratelimit-limit-requests": str(item.amount),
                       "x-ratelimit-remaining-requests": str(stats.remaining),
                       "x-ratelimit-reset-requests": _reset_text(wait)}
            if not allowed:
                count_rate_limited(f"{kind}_rpm")
                retry_after = str(math.ceil(wait) or 1)
                raise ApiError(429, "rate_limited",
                               f"This {kind} may send {item.amount} requests a minute. "
                               + REFUSED_HINT, headers={**headers, "Retry-After": retry_after})
        return headers


# Drop lapsed slots; take one if fewer than the limit are held. Atomic in Redis.
_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class StreamSlots:
    """Streams open at once, per user and per key: a slot is taken before an answer
    starts and given back when it ends (or lapses `hold_seconds` after it was taken)."""

    def __init__(self, client: redis.Redis | None, hold_seconds: float, user_limit: int,
                 key_limit: int) -> None:
        self.client = client
        self.hold_seconds = hold_seconds
        self.user_limit, self.key_limit = user_limit, key_limit
        self._local: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        if client is not None:
            self._take_script = client.register_script(_TAKE_SLOT)

    def take_for(self, user_id: str, key_id: str | None, key_limit: int | None,
                 stream_id: str) -> Callable[[], None]:
        """Take the slots an answer of this caller needs, or none (429); returns what
        gives them back."""
        owners = []
        if key_id is not None and (key_limit or self.key_limit):
            owners.append((f"key:{key_id}", key_limit or self.key_limit))
        if self.user_limit:
            owners.append((f"user:{user_id}", self.user_limit))
        if not owners:
            return lambda: None
        self.take(owners, stream_id)
        return lambda: self.give_back([owner for owner, _ in owners], stream_id)

    def take(self, owners: list[tuple[str, int]], stream_id: str) -> None:
        """Take a slot under every (owner key, limit) for `stream_id`, or none (429)."""
        taken = []
        for owner, limit in owners:
            if not self._take_one(owner, limit, stream_id):
                for done in taken:
                    self._give_one(done, stream_id)
                count_rate_limited(f"{owner.partition(':')[0]}_streams")
                raise ApiError(429, "too_many_streams",
                               f"At most {limit} answers may stream at once here; wait for one "
                               "to end, or cancel one.", headers={"Retry-After": "1"})
            taken.append(owner)

    def give_back(self, owners: list[str], stream_id: str) -> None:
        for owner in owners:
            self._give_one(owner, stream_id)

    def _take_one(self, owner: str, limit: int, stream_id: str) -> bool:
        now = time.time()
        if self.client is None:
            with self._lock:
                held = self._local.setdefault(owner, {})
                for expired in [s for s, until in held.items() if until <= now]:
                    del held[expired]
                if len(held) >= limit:
                    return False
                held[stream_id] = now + self.hold_seconds
                return True
        return bool(self._take_script(keys=[f"sluice:slots:{owner}"], args=[
            now, limit, now + self.hold_seconds, stream_id, math.ceil(self.hold_seconds) + 60]))

    def _give_one(self, owner: str, stream_id: str) -> None:
        if self.client is None:
            with self._lock:
                self._local.get(owner, {}).pop(stream_id, None)
            return
        self.client.zrem(f"sluice:slots:{owner}", stream_id)


class RateLimits:
    """This app's limits: requests per minute (counted before each authenticated view)
    and stream slots (taken by whatever starts an answer)."""

    def __init__(self, config: Mapping[str, Any], client: redis.Redis | None) -> None:
        self.config = config
        self.uri = config["REDIS_URL"] or "memory://"
        self.slots = StreamSlots(client, config["SLUICE_TOTAL_TIMEOUT"] + 60,
                                 config["SLUICE_USER_MAX_STREAMS"],
                                 config["SLUICE_KEY_MAX_STREAMS"])
        self._requests: RequestLimits | None = None
        self._lock = threading.Lock()

    def requests(self) -> RequestLimits:
        """Made at first use: a server without request limits never connects for them."""
        with self._lock:
            if self._requests is None:
                self._requests = RequestLimits(self.uri, self.config["SLUICE_USER_RPM"],
                                               self.config["SLUICE_KEY_RPM"])
            return self._requests

    def sign_in_attempt(self, name: str) -> None:
        """Count an attempt to sign in as `name`; a 429 past `SIGN_IN_ATTEMPTS` a minute."""
        item = RateLimitItemPerMinute(SIGN_IN_ATTEMPTS)
        limiter = self.requests().limiter
        if not limiter.hit(item, "sign-in", name[:64]):
            count_rate_limited("sign_in")
            wait = limiter.get_window_stats(item, "sign-in", name[:64]).reset_time - time.time()
            raise ApiError(429, "rate_limited", "Too many attempts to sign in as this user; "
                           "wait a minute.", headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def counts_requests(self, key_rpm: int | None) -> bool:
        return bool(key_rpm or self.config["SLUICE_USER_RPM"] or self.config["SLUICE_KEY_RPM"])


def rate_limits(app: Flask | None = None) -> RateLimits:
    return (app or current_app).extensions[EXTENSION]


def count_request(identity: Identity) -> dict[str, str]:
    """Count one request of `identity` against its limits (an HTTP request, or a
    socket's request event); the `x-ratelimit-*` headers, or a 429 over a limit."""
    limits = rate_limits()
    if not limits.counts_requests(identity.key_rpm):
        return {}
    return limits.requests().hit(identity.id, identity.key_id, identity.key_rpm)


def _count_request() -> None:
    identity = g.get("identity")
    if identity is not None:  # None: a public route
        g.rate_headers = count_request(identity)


def _add_headers(response: Response) -> Response:
    response.headers.update(g.get("rate_headers", {}))
    return response


def init_app(app: Flask) -> None:
    """After auth (it needs the caller) and streaming (it shares its Redis client, and
    its runs take the stream slots)."""
    core = streaming(app)
    limits = RateLimits(app.config, core.redis)
    core.slots = limits.slots
    app.extensions[EXTENSION] = limits
    app.before_request(_count_request)
    app.after_request(_add_headers)
