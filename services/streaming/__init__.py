"""The streaming core: runs produce into an event log that responses subscribe to.

Without `REDIS_URL` the log lives in this process (run one worker); with it, in
Redis, and any worker on any host can serve or cancel any stream.
"""
from __future__ import annotations

from typing import Any

import redis
from flask import Flask

from ..config import ConfigError
from ..storage import database
from .core import EXTENSION, Streaming, streaming
from .event_log import EventLog, MemoryEventLog
from .leases import LeaseKeeper
from .manager import RunManager
from .redis_log import RedisCancelBus, RedisEventLog
from .resume import cancel_stream, stream_frames, to_client
from .runs import RunSpec, StreamRun
from .shutdown import install_graceful_shutdown
from .subscribe import StalledClients

__all__ = ["RunSpec", "StreamRun", "Streaming", "cancel_stream", "init_app",
           "install_graceful_shutdown", "stream_frames", "streaming", "to_client"]


def init_app(app: Flask) -> None:
    """Attach the event log, run manager, lease keeper and (with Redis) the cancel bus."""
    config = app.config
    client = None
    if config["REDIS_URL"]:
        # Subscribers block in XREAD for up to a ping interval: reads may take that long.
        client = _redis_client(config["REDIS_URL"],
                               socket_timeout=config["SLUICE_PING_SECONDS"] + 10)
    log: EventLog = (RedisEventLog(client, config["SLUICE_EVENT_TTL_SECONDS"]) if client
                     else MemoryEventLog(ttl_seconds=config["SLUICE_EVENT_TTL_SECONDS"]))
    db = database(app)
    lease = config["SLUICE_LEASE_SECONDS"]
    runs = RunManager(log, db, config["SLUICE_CHECKPOINT_SECONDS"], lease)
    core = Streaming(log, runs, db, config["SLUICE_PING_SECONDS"], lease, redis=client)
    core.keeper = LeaseKeeper(db, log, runs.stream_ids, lease)
    core.keeper.start()
    core.stalled = StalledClients(config["SLUICE_SEND_TIMEOUT"])
    core.stalled.start()
    if client is not None:
        # The subscription idles for as long as nobody cancels: no read timeout, but
        # a health check so that a dead connection is noticed and replaced.
        listener = _redis_client(config["REDIS_URL"], socket_timeout=None,
                                 health_check_interval=30)
        core.bus = RedisCancelBus(client, listener, runs.cancel)
        core.bus.start()
    app.extensions[EXTENSION] = core


def _redis_client(url: str, **options: Any) -> redis.Redis:
    try:
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a Redis URL: {exc}") from None
