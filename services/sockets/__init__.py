"""The WebSocket transport: Socket.IO at `/socket.io/`, beside SSE, over the same
streaming core (the README's WebSocket section lists its events).

- **WebSocket only** (no long-polling): a socket is one connection to one worker, so
  several workers behind nginx need no sticky sessions. Flask-SocketIO runs in
  gevent mode, with simple-websocket taking over gunicorn's connection.
- **Who connects** is decided once, at connect, as for an HTTP request (an API key in
  the connect `auth`, or the session cookie), and kept with the socket. The handshake
  is a GET that a page on another site could make with the user's cookie, so its
  `Host` and `Origin` pass the same checks as a state-changing request.
- **Any worker serves any subscription**: a follower reads the stream's event log
  (Redis when shared) from a seq on, exactly as an SSE response does, and a cancel
  reaches the producer wherever it runs through the streaming core's bus. Every emit
  is made by the worker that holds the socket, so Socket.IO's Redis manager (for
  emits across processes) is not needed.
- **What a socket costs the run: nothing.** A socket that stops reading is cut
  (followers.py); a worker that stops closes its sockets once its answers have ended.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import socketio as python_socketio
from flask import Flask, current_app, request
from flask_socketio import SocketIO
from werkzeug.wrappers import Response

from ..auth import Identity, socket_identity
from ..errors import ApiError
from ..streaming import streaming
from ..web.guards import check_socket_handshake
from .followers import Followers
from .requests import REQUESTS, Reply

__all__ = ["REQUESTS", "Reply", "Sockets", "connect", "error_payload", "init_app",
           "socket_user", "sockets"]

logger = logging.getLogger(__name__)

EXTENSION = "sluice.sockets"
SETTLE_SECONDS = 2.0  # on shutdown, how long followers may take to send the last events
_IDENTITY = "sluice.identity"  # where a socket's user is kept: its handshake's environ


@dataclass
class Sockets:
    socketio: SocketIO
    followers: Followers

    def close_all(self) -> None:
        """SIGTERM, once this process's answers have ended: let the followers send what
        is left, then close every socket, so that its client reconnects to a worker that
        stays (and resumes from its last seq) instead of holding this one until
        gunicorn's deadline."""
        self.followers.wait_idle(SETTLE_SECONDS)
        for connection in list(self.socketio.server.eio.sockets.values()):
            connection.close(wait=False)


def init_app(app: Flask) -> None:
    """After every other part: its middleware must be the outermost, taking `/socket.io/`
    before Flask sees it (requests to it never reach a view)."""
    socketio = SocketIO(
        app, async_mode="gevent", transports=["websocket"],
        # Checked at connect by the same rules as HTTP (check_socket_handshake), which
        # answers with a reason the client can read rather than a bare 400.
        cors_allowed_origins="*",
        max_http_buffer_size=app.config["MAX_CONTENT_LENGTH"],
        logger=False, engineio_logger=False)
    app.wsgi_app = _websocket_only(app.wsgi_app)  # type: ignore[method-assign]
    _close_on_malformed_packets(socketio.server)
    followers = Followers(app, socketio.server, app.config["SLUICE_SEND_TIMEOUT"])
    app.extensions[EXTENSION] = parts = Sockets(socketio, followers)
    streaming(app).on_drained.append(parts.close_all)


def _websocket_only(inner: Callable[..., Any]) -> Callable[..., Any]:
    """`/socket.io/` answers WebSocket handshakes only. Anything else there (a Socket.IO
    client left on its default long-polling first, a browser opening the URL) gets a
    JSON error that says what to change, rather than Engine.IO's bare 400."""
    refusal = Response(json.dumps({"error": {
        "code": "websocket_required",
        "message": "Sluice's Socket.IO endpoint speaks WebSocket only: connect with "
                   "transports: ['websocket']."}}), status=400, mimetype="application/json")

    def gate(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if (path == "/socket.io" or path.startswith("/socket.io/")) and not (
                environ.get("HTTP_UPGRADE", "").lower() == "websocket"
                and "transport=websocket" in environ.get("QUERY_STRING", "")):
            return refusal(environ, start_response)
        return inner(environ, start_response)
    return gate


def _close_on_malformed_packets(server: python_socketio.Server) -> None:
    """A packet python-socketio cannot decode (not JSON, nested past Python's recursion
    limit, of no known type) raises inside Engine.IO's message handler, which would
    log a traceback for each one and leave its sender waiting for an answer. It is a
    protocol error: one line in the log, and the socket is closed, as Socket.IO's own
    clients close a connection that sends what they cannot parse."""
    handle = server.eio.handlers["message"]

    def guarded(eio_sid: str, data: Any) -> Any:
        try:
            return handle(eio_sid, data)
        except (ValueError, RecursionError) as exc:
            logger.info("socket %s sent a malformed packet (%s); closing it", eio_sid,
                        type(exc).__name__)
            connection = server.eio.sockets.get(eio_sid)
            if connection is not None:
                connection.close(wait=False)
            return None

    server.eio.on("message", guarded)


def sockets(app: Flask | None = None) -> Sockets:
    return (app or current_app).extensions[EXTENSION]


def error_payload(exc: ApiError) -> dict[str, Any]:
    """An error as a socket sends it: the HTTP error's fields, with its status."""
    error: dict[str, Any] = {"code": exc.code, "message": exc.message, "status": exc.status}
    if exc.param is not None:
        error["param"] = exc.param
    return error


def connect(credentials: Any) -> Identity:
    """Admit the socket whose handshake is the current request, or raise `ApiError`."""
    check_socket_handshake()
    identity = socket_identity(credentials)
    request.environ[_IDENTITY] = identity
    return identity


def socket_user() -> Identity:
    """The user the current event's socket connected as."""
    return request.environ[_IDENTITY]
