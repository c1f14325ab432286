"""What each socket follows: one greenlet per subscription, reading a stream's frames
exactly as an SSE response would (from the event log, or rebuilt from storage) and
emitting each event to the socket.

Pacing. An emit only queues a packet for the socket's writer, so a client that stops
reading would let that queue grow without end. Before each event a follower waits
while more than `BACKLOG` packets are queued for its socket; if the queue has not
drained within the send timeout (`SLUICE_SEND_TIMEOUT`, as for SSE) the connection is
cut and the socket ends. The run never waits on a socket: it writes to the log, and a
follower reads from it, so a slow socket costs only its own queue.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import socketio
from flask import Flask

from ..errors import ApiError
from ..sse import frames_data
from ..streaming.event_log import FINAL_EVENT
from ..streaming.subscribe import cut_connection

logger = logging.getLogger(__name__)

BACKLOG = 256  # packets queued for one socket before its followers wait
PACE_SECONDS = 0.02  # how often a waiting follower looks at the queue again
MAX_FOLLOWED = 32  # streams and jobs one socket may follow at once

Final = Callable[[], dict[str, Any]]


class Followers:
    """The running subscriptions of every socket of this process, by sid and key (a
    stream id, or `job:<id>`). Subscribing again to the same key replaces the follower:
    that is how a client resumes from another seq on the same socket."""

    def __init__(self, app: Flask, server: socketio.Server, send_timeout: float) -> None:
        self._app = app
        self._server = server
        self.send_timeout = send_timeout
        self._running: dict[str, dict[str, gevent.Greenlet]] = {}

    def check_room(self, sid: str, key: str | None = None) -> None:
        """A 429 if the socket already follows as many as it may (`key` would replace one
        of them: always room)."""
        running = self._running.get(sid, {})
        if key not in running and len(running) >= MAX_FOLLOWED:
            raise ApiError(429, "too_many_subscriptions",
                           f"A socket follows at most {MAX_FOLLOWED} streams and jobs at once; "
                           "open another socket, or wait for one to end.")

    def start(self, sid: str, key: str, event: str, label: dict[str, Any],
              frames: Iterator[bytes] | None, final: Final | None = None) -> None:
        """Emit `event` to `sid` for each event of `frames`, each with `label` added; then,
        if given, `final()` as one more. (Its request checked the room: this runs after
        the acknowledgement, when a refusal could no longer be told.)"""
        running = self._running.setdefault(sid, {})
        earlier = running.pop(key, None)
        if earlier is not None:
            earlier.kill(block=False)
        running[key] = gevent.spawn(self._follow, sid, key, event, label, frames, final)

    def wait_idle(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for every follower to have sent all it follows."""
        deadline = time.monotonic() + timeout
        while any(self._running.values()) and time.monotonic() < deadline:
            time.sleep(PACE_SECONDS)

    def stop_all(self, sid: str) -> None:
        """The socket is gone: stop following for it."""
        for follower in self._running.pop(sid, {}).values():
            follower.kill(block=False)

    def _follow(self, sid: str, key: str, event: str, label: dict[str, Any],
                frames: Iterator[bytes] | None, final: Final | None) -> None:
        try:
            with self._app.app_context():  # as `stream_with_context` gives an SSE response
                whole = self._emit_all(sid, event, label, frames, final)
            if not whole:
                # The log could not be read (Redis is away). An SSE response would end
                # here and its client resume later; a socket client does the same after
                # its connection drops, so drop it.
                logger.info("lost the log of %s; closing socket %s to be resumed", key, sid)
                self._cut(sid)
        except Exception:  # noqa: BLE001 - one subscription failing must not end others
            logger.exception("following %s for socket %s failed", key, sid)
        finally:
            running = self._running.get(sid, {})
            if running.get(key) is gevent.getcurrent():
                del running[key]

    def _emit_all(self, sid: str, event: str, label: dict[str, Any],
                  frames: Iterator[bytes] | None, final: Final | None) -> bool:
        """Emit every event, then `final()`; False if a stream's frames ended before its
        `done` (a job's end is told by `final` either way)."""
        ended = frames is None
        for chunk in frames or ():
            for data in frames_data(chunk):
                if not self._room_to_send(sid):
                    return True  # the socket is being cut
                self._server.emit(event, {**data, **label}, to=sid)
                ended = data["type"] == FINAL_EVENT
        if final is not None:
            self._server.emit(event, final(), to=sid)
            return True
        return ended

    def _room_to_send(self, sid: str) -> bool:
        """Wait while the socket's queue is full; False (and the connection cut) if it
        does not drain within the send timeout."""
        waited_since = None
        while self._backlog(sid) > BACKLOG:
            now = time.monotonic()
            waited_since = waited_since or now
            if now - waited_since > self.send_timeout:
                logger.info("socket %s stopped reading; closing it", sid)
                self._cut(sid)
                return False
            time.sleep(PACE_SECONDS)
        return True

    def _backlog(self, sid: str) -> int:
        """Packets queued for the socket's writer (Engine.IO's per-socket queue)."""
        eio_sid = self._server.manager.eio_sid_from_sid(sid, "/")
        connection = self._server.eio.sockets.get(eio_sid) if eio_sid else None
        return connection.queue.qsize() if connection is not None else 0

    def _cut(self, sid: str) -> None:
        """Shut the connection under the writer that is blocked on it: the write fails,
        Engine.IO closes the socket, and its disconnect stops every follower."""
        environ = self._server.get_environ(sid) or {}
        client = environ.get("gunicorn.socket")
        if client is not None:
            cut_connection(client)
