"""When a failed webhook delivery is tried again, and when it is given up.

The delays come from SLUICE_WEBHOOK_RETRY_SECONDS, one per retry; each is spread
by ±20 % so that deliveries that failed together (a receiver that was down) do not
all come back in the same second, and is never shorter than the receiver's own
`Retry-After`. After the last delay's attempt the delivery has failed.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence

DEFAULT_RETRY_SECONDS = (5.0, 30.0, 120.0, 600.0, 3600.0, 21600.0)
JITTER = 0.2
_jitter_source = random.Random()


def next_delay(attempt: int, schedule: Sequence[float], retry_after: float | None,
               rng: random.Random | None = None) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, now that attempt `attempt` (1 for
    the first) has failed; None when the schedule has no more attempts."""
    if attempt < 1:
        raise ValueError(f"attempts count from 1, got {attempt}")
    if attempt > len(schedule):
        return None
    spread = (rng or _jitter_source).uniform(1 - JITTER, 1 + JITTER)
    delay = schedule[attempt - 1] * spread
    return max(delay, retry_after) if retry_after is not None else delay


def parse_schedule(raw: str) -> tuple[float, ...]:
    """Delays in seconds written `5,30,120`; ValueError saying what is wrong otherwise."""
    example = "write seconds separated by commas, like 5,30,120"
    delays = []
    for item in raw.split(","):
        try:
            delay = float(item.strip())
        except ValueError:
            raise ValueError(f"{item.strip()!r} is not a number of seconds: {example}") from None
        if not math.isfinite(delay) or delay <= 0:
            raise ValueError(f"each delay must be more than 0 seconds, got {item.strip()!r}")
        delays.append(delay)
    return tuple(delays)
