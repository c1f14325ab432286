"""The streaming core of one app: its event log, runs, storage and background helpers."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from flask import Flask, current_app

from ..storage import Database
from .event_log import EventLog
from .leases import LeaseKeeper
from .manager import RunManager
from .observer import NO_OBSERVER, StreamObserver
from .redis_log import RedisCancelBus
from .subscribe import StalledClients

EXTENSION = "sluice.streaming"


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
    draining: threading.Event = field(default_factory=threading.Event)
    observer: StreamObserver = NO_OBSERVER  # metrics (services/metrics)

    def stop(self) -> None:
        """Stop this process's background work (tests; the process is going away)."""
        for part in (self.keeper, self.bus, self.stalled, self.log):
            if part is not None:
                part.stop()
        self.runs.stop_background()


def streaming(app: Flask | None = None) -> Streaming:
    return (app or current_app).extensions[EXTENSION]
