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
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name=self.name)
        self._thread.start()

    def stop(self, wait: float = 0.0) -> None:
        """Stop after the current round; `wait`: up to that long for it to end."""
        self._stopped.set()
        if wait and self._thread is not None:
            self._thread.join(wait)

    def tick(self) -> Any:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.tick()
            except SQLAlchemyError:
                logger.exception(self.failure)
