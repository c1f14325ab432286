"""One upstream call's connection, reachable from other threads in every phase.

A run must be able to stop a provider call while it connects, sends, waits for
the response headers or reads the body. Until the headers arrive there is no
response to close, so the pooled connection itself (http.py) tells the call
that is current in its thread which socket it sends on, from before the socket
connects; `interrupt()` shuts that socket down, which wakes a connect, a send or
a read blocked on it under threads and gevent alike. An interrupt that comes
before there is a socket is applied as soon as there is one. (Resolving the
host's name comes before any socket and is bounded by the resolver alone.)

`threading.local` is greenlet-local under gevent's monkey-patching, so each
producer has its own current call.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_current = threading.local()


class UpstreamCall:
    """The connection of one provider call, and how to cut it from anywhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: object | None = None  # the pooled connection the call was sent on
        self._sock: socket.socket | None = None
        self._interrupted = False

    def attach(self, owner: object, sock: socket.socket) -> bool:
        """`owner` (a pooled connection) sends this call on `sock`, which may still be
        connecting; cut it at once if the call was interrupted before it had a socket.
        False if it was."""
        with self._lock:
            self._owner, self._sock = owner, sock
            interrupted = self._interrupted
        if interrupted:
            shutdown_socket(sock)
        return not interrupted

    def interrupt(self) -> None:
        """Cut the call's connection now, or as soon as it has one. A connection that
        has gone back to the pool and on to another call (its `upstream_call` is that
        one now) is left alone."""
        with self._lock:
            self._interrupted = True
            sock = self._sock
            if sock is not None and getattr(self._owner, "upstream_call", None) is self:
                shutdown_socket(sock)


def shutdown_socket(sock: socket.socket) -> None:
    """Shut `sock` down for both directions, from any thread or greenlet: a reader
    blocked on it wakes (closing it from outside the reader is not safe under gevent)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, by the peer or by the reader


def current_call() -> UpstreamCall | None:
    """The call that connections opened or reused in this thread now belong to."""
    return getattr(_current, "call", None)


@contextmanager
def calling(call: UpstreamCall | None) -> Iterator[None]:
    """Make `call` current in this thread (greenlet) while the request is made."""
    previous = current_call()
    _current.call = call
    try:
        yield
    finally:
        _current.call = previous
