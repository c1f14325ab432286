"""The streaming core: runs produce into an event log that responses subscribe to.

Without `REDIS_URL` the log lives in this process (run one worker); with it, in
Redis, and any worker on any host can serve or cancel any stream.
"""
from __future__ import annotations

import os
from typing import Any

import redis
from flask import Flask

from ..config import ConfigError
from ..storage import database
from ..context import context
from ..memory import extraction_enabled
from ..tools import toolbox
from .core import EXTENSION, Streaming, streaming
from .event_log import EventLog, MemoryEventLog
from .leases import LeaseKeeper
from .manager import RunManager
from .observer import NO_OBSERVER, StreamObserver
from .redis_io import RedisTail
from .redis_log import RedisCancelBus, RedisEventLog
from .resume import cancel_stream, stream_frames, to_client
from .runs import StreamRun
from .spec import RunSpec, ServerTools
from .shutdown import install_graceful_shutdown
from .subscribe import StalledClients

__all__ = ["RunSpec", "ServerTools", "StreamObserver", "StreamRun", "Streaming", "cancel_stream",
           "init_app", "install_graceful_shutdown", "stream_frames", "streaming", "to_client"]


def init_app(app: Flask, observer: StreamObserver = NO_OBSERVER) -> None:
    """Attach the event log, run manager, lease keeper and (with Redis) the cancel bus;
    `observer` hears about every stream (metrics)."""
    config = app.config
    client = None
    if config["REDIS_URL"]:
        # Commands share a small pool, whatever the number of streams: a request waits
        # for a free connection rather than opening one more.
        client = _redis_client(config["REDIS_URL"],
                               max_connections=config["SLUICE_REDIS_CONNECTIONS"], timeout=5,
                               socket_connect_timeout=2, socket_timeout=5)
        # The tail blocks in XREAD for up to BLOCK_MS: reads may take that long.
        reader = _redis_client(config["REDIS_URL"], socket_connect_timeout=2,
                               socket_timeout=RedisTail.BLOCK_MS / 1000 + 10)
        log: EventLog = RedisEventLog(client, reader, config["SLUICE_EVENT_TTL_SECONDS"],
                                      local_max_bytes=config["SLUICE_EVENT_LOG_MAX_BYTES"])
        log.start()
    else:
        log = MemoryEventLog(config["SLUICE_EVENT_TTL_SECONDS"],
                             max_bytes=config["SLUICE_EVENT_LOG_MAX_BYTES"])
    db = database(app)
    lease = config["SLUICE_LEASE_SECONDS"]
    runs = RunManager(log, db, config["SLUICE_CHECKPOINT_SECONDS"], lease, observer)
    runs.start_background()
    core = Streaming(log, runs, db, config["SLUICE_PING_SECONDS"], lease, redis=client,
                     observer=observer, tools=toolbox(app), context=context(app),
                     memory_extraction=extraction_enabled(app))
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


def _connection_name() -> str:
    """Every Redis connection of this process says whose it is (`CLIENT LIST`)."""
    return f"sluice-{os.getpid()}"


def _redis_client(url: str, max_connections: int | None = None,
                  **options: Any) -> redis.Redis:
    """A client for `url`; with `max_connections`, on a pool that waits for a free
    connection (up to `timeout` seconds) rather than opening one more."""
    options["client_name"] = _connection_name()
    try:
        if max_connections is None:
            return redis.Redis.from_url(url, **options)
        return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, **options))
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a Redis URL: {exc}") from None
