"""The streaming core of one app: its event log, runs, storage and background helpers."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from flask import Flask, current_app

from ..errors import ApiError
from ..storage import Database
from .event_log import EventLog, LogUnavailable
from .leases import LeaseKeeper
from .manager import RunManager
from .observer import NO_OBSERVER, StreamObserver
from .redis_log import RedisCancelBus
from .subscribe import StalledClients

if TYPE_CHECKING:
    from ..ratelimit import StreamSlots

EXTENSION = "sluice.streaming"


def _nothing() -> None:
    pass


@dataclass
class Streaming:
    log: EventLog
    runs: RunManager
    db: Database
    ping_seconds: float
    lease_seconds: float
    redis: redis.Redis | None = None
    bus: RedisCancelBus | None = None
    keeper: LeaseKeeper | None = None
    stalled: StalledClients | None = None
    slots: StreamSlots | None = None  # rate limits' open-stream slots (services/ratelimit.py)
    draining: threading.Event = field(default_factory=threading.Event)
    observer: StreamObserver = NO_OBSERVER  # metrics (services/metrics)
    tools: Any = None  # the tools Sluice runs itself (a services.tools.Toolbox)
    context: Any = None  # token calibration and summary settings (services.context)
    memory_extraction: bool = False  # SLUICE_MEMORY_EXTRACTION: facts mined from answers
    # On SIGTERM, what to close once this process's answers have ended (its sockets).
    on_drained: list[Callable[[], None]] = field(default_factory=list)

    def ensure_accepting(self) -> None:
        """A 503 unless a new answer may start now: not while this server shuts down, nor
        while the shared log (Redis) is away, so a request fails before it stores anything."""
        if self.draining.is_set():
            raise ApiError(503, "shutting_down", "This server is shutting down; try again.")
        if not self.log.available():
            raise LogUnavailable("checked before starting an answer")

    def take_slots(self, user_id: str, key_id: str | None, key_max_streams: int | None,
                   stream_id: str) -> Callable[[], None]:
        """The rate limits' open-stream slots for a new answer (a 429 if one is full);
        returns what gives them back when the answer ends."""
        if self.slots is None:
            return _nothing
        return self.slots.take_for(user_id, key_id, key_max_streams, stream_id)

    def stop(self) -> None:
        """Stop this process's background work (tests; the process is going away)."""
        for part in (self.keeper, self.bus, self.stalled, self.log):
            if part is not None:
                part.stop()
        self.runs.stop_background()


def streaming(app: Flask | None = None) -> Streaming:
    return (app or current_app).extensions[EXTENSION]
