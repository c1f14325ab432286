"""Background work a process repeats on an interval, in one thread of its own (a
greenlet under gevent): the grouped checkpoint, and recovery of orphaned streams."""
from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)


class Periodic:
    """Calls `tick()` every `interval` seconds until `stop()`. A database error in one
    round is logged with `failure` and the next round runs as usual."""

    name = "sluice-periodic"
    failure = "periodic work failed; will try again"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name=self.name).start()

    def stop(self) -> None:
        self._stopped.set()

    def tick(self) -> Any:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.tick()
            except SQLAlchemyError:
                logger.exception(self.failure)
