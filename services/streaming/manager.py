"""The runs of this process: start them, find them by stream or thread, stop them."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table

from ..storage import Database
from .checkpoints import Checkpointer
from .deadlines import Deadlines
from .event_log import EventLog
from .observer import NO_OBSERVER, StreamObserver
from .runs import StreamRun
from .spec import RunSpec


class RunManager:
    """Starts runs, finds them by stream or thread, and cancels them. Its runs share one
    deadline timer and one checkpointer."""

    def __init__(self, log: EventLog, db: Database, checkpoint_seconds: float,
                 lease_seconds: float, observer: StreamObserver = NO_OBSERVER) -> None:
        self.log = log
        self.db = db
        self.observer = observer
        self.deadlines = Deadlines()
        self.checkpointer = Checkpointer(db, self.checkpoints, self.leased,
                                         checkpoint_seconds, lease_seconds)
        self._runs: dict[str, StreamRun] = {}
        self._lock = threading.Lock()

    def start_background(self) -> None:
        self.checkpointer.start()

    def stop_background(self) -> None:
        self.checkpointer.stop()

    def checkpoints(self) -> list[dict[str, Any]]:
        """What the running answers have to store since the last checkpoint."""
        return [values for run in self._all() if (values := run.checkpoint()) is not None]

    def start(self, spec: RunSpec, on_end: Callable[[], None] | None = None) -> StreamRun:
        """Open the stream's log and start the producer; `on_end` runs once it has ended
        (it gives back what the answer held, such as its rate-limit slots)."""
        self.log.open(spec.stream_id)
        for event_type, payload in spec.prelude:
            self.log.append(spec.stream_id, event_type, payload)
        # Accepted: a client shows the saved message and a "thinking" state at once.
        self.log.append(spec.stream_id, "start", spec.start_payload(spec.candidates[0].id))
        for message in spec.saved_messages:
            self.log.append(spec.stream_id, "message_saved", {"message": message})
        run = StreamRun(spec, self.log, self.db, self.deadlines, self.observer)
        with self._lock:
            self._runs[spec.stream_id] = run
        # Under gunicorn's gevent worker, threading is monkey-patched: this is a greenlet.
        threading.Thread(target=self._produce, args=(run, on_end), daemon=True,
                         name="sluice-run").start()
        return run

    def _produce(self, run: StreamRun, on_end: Callable[[], None] | None) -> None:
        self.observer.stream_opened()
        try:
            run.run()
        finally:
            self.observer.stream_closed()
            with self._lock:
                self._runs.pop(run.spec.stream_id, None)
            if on_end is not None:
                on_end()

    def stream_ids(self) -> list[str]:
        """This process's runs that fill a stored answer: the ones with a lease to renew
        (a stateless /v1 answer has no row, so nothing to renew or recover)."""
        with self._lock:
            return [stream_id for stream_id, run in self._runs.items()
                    if run.spec.answer is not None]

    def leased(self) -> list[tuple[Table, str]]:
        """The table and stream id of each run of this process that fills a stored answer."""
        with self._lock:
            return [(run.spec.answer.table, stream_id) for stream_id, run in self._runs.items()
                    if run.spec.answer is not None]

    def get(self, stream_id: str) -> StreamRun | None:
        with self._lock:
            return self._runs.get(stream_id)

    def for_thread(self, thread_id: str) -> list[StreamRun]:
        with self._lock:
            return [run for run in self._runs.values() if run.spec.thread_id == thread_id]

    def cancel(self, stream_id: str) -> bool:
        """Cancel a run of this process; False if there is none under that id."""
        run = self.get(stream_id)
        if run is None:
            return False
        run.cancel()
        return True

    def drain(self, timeout: float) -> None:
        """Let running answers finish for up to `timeout` seconds, then interrupt the rest
        (their text is stored, their streams end with status `interrupted`)."""
        deadline = time.monotonic() + timeout
        for run in self._all():
            run.finished.wait(max(0.0, deadline - time.monotonic()))
        self._stop_all(StreamRun.interrupt, wait=5.0)

    def shutdown(self, timeout: float) -> None:
        """Cancel every run and wait up to `timeout` seconds for them to store their end."""
        self._stop_all(StreamRun.cancel, wait=timeout)

    def _all(self) -> list[StreamRun]:
        with self._lock:
            return list(self._runs.values())

    def _stop_all(self, stop: Callable[[StreamRun], None], wait: float) -> None:
        runs = self._all()
        for run in runs:
            stop(run)
        deadline = time.monotonic() + wait
        for run in runs:
            run.finished.wait(max(0.0, deadline - time.monotonic()))
