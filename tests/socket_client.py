"""A Socket.IO user for tests: the official python-socketio client over WebSocket, with
the events it receives kept by stream and by job."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import socketio


class SocketUser:
    """One socket, as a user's program holds one. `call` sends a request and returns its
    acknowledgement; `stream(id)` / `job(id)` wait for a stream's `done` / a job's end."""

    def __init__(self, url: str, **options: Any) -> None:
        self.client = socketio.Client(reconnection=False, **options)
        self.streams: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.refusal: dict[str, Any] | None = None
        self._changed = threading.Condition()
        self.client.on("stream_event", lambda data: self._keep(self.streams, "stream_id", data))
        self.client.on("job_progress", lambda data: self._keep(self.jobs, "job_id", data))
        self.client.on("connect_error", self._refused)
        self.url = url

    def connect(self, **options: Any) -> SocketUser:
        self.client.connect(self.url, transports=["websocket"], wait_timeout=10, **options)
        return self

    def __enter__(self) -> SocketUser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()

    def call(self, event: str, data: Any) -> dict[str, Any]:
        return self.client.call(event, data, timeout=30)

    def wait(self, condition, timeout: float = 30, what: str = "events") -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := condition()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self._changed.wait(left)
            return value

    def stream(self, stream_id: str, timeout: float = 30) -> list[dict[str, Any]]:
        """The stream's events once its `done` has arrived."""
        events = self.streams[stream_id]
        self.wait(lambda: events and events[-1]["type"] == "done", timeout, f"{stream_id} done")
        return list(events)

    def job(self, job_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """The job's progress once its last message (`type: job`) has arrived."""
        events = self.jobs[job_id]
        self.wait(lambda: events and events[-1]["type"] == "job", timeout, f"job {job_id}")
        return list(events)

    def everything(self) -> list[dict[str, Any]]:
        with self._changed:
            return [e for kept in (self.streams, self.jobs) for events in kept.values()
                    for e in events]

    def _keep(self, kept: dict[str, list[dict[str, Any]]], key: str, data: dict[str, Any]) -> None:
        with self._changed:
            kept[data[key]].append(data)
            self._changed.notify_all()

    def _refused(self, data: Any) -> None:
        self.refusal = data


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["content"] for e in events if e["type"] == "delta")


def seqs(events: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in events if "seq" in e]
