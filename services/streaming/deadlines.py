"""Deadlines for every run of a process on one timer, instead of a timer greenlet per
run that lives as long as the answer (the total timeout is ten minutes by default)."""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Deadline:
    """A call due at `when` (monotonic seconds); `cancel()` before then and it never runs."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Deadlines:
    """One thread (a greenlet under gevent) runs every due callback, in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._cancelled = 0
        self._thread: threading.Thread | None = None

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Deadline:
        deadline = Deadline(time.monotonic() + seconds, callback)
        with self._changed:
            heapq.heappush(self._heap, (deadline.when, next(self._order), deadline))
            if self._heap[0][2] is deadline:
                self._changed.notify()  # earlier than what the timer waits for
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="sluice-deadlines")
                self._thread.start()
        return deadline

    def cancel(self, deadline: Deadline | None) -> None:
        """Cancel `deadline` (None is fine); the heap sheds cancelled entries as it goes."""
        if deadline is None or deadline.cancelled:
            return
        deadline.cancel()
        with self._changed:
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled > len(self._heap) // 2:
                self._heap = [item for item in self._heap if not item[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def __len__(self) -> int:
        with self._changed:
            return sum(1 for item in self._heap if not item[2].cancelled)

    def _next_due(self) -> Deadline:
        with self._changed:
            while True:
                if not self._heap:
                    self._changed.wait()
                    continue
                when, _, deadline = self._heap[0]
                if deadline.cancelled:
                    heapq.heappop(self._heap)
                    self._cancelled = max(0, self._cancelled - 1)
                    continue
                wait = when - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._heap)
                    return deadline
                self._changed.wait(wait)

    def _loop(self) -> None:
        while True:
            deadline = self._next_due()
            try:
                deadline.callback()
            except Exception:  # one failing callback must not stop every other deadline
                logger.exception("a deadline callback failed")
