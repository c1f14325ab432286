"""One HTTP exchange with a pinned address, bounded in time and in size.

Webhook deliveries (a POST) and the fetch_url tool (a GET) both send requests to
URLs users give; both go through here so that both connect only to the address
`guard.resolve` checked. The name is sent only as `Host`, and for https as the
TLS server name, so the certificate is still verified for the name (against the
system's trust store, or the file SSL_CERT_FILE names). Redirects are never
followed here (a caller that follows them checks each hop with the guard again),
proxies from the environment are not used (a proxy would resolve the name again,
unchecked), and each exchange has a connection of its own, so nothing is reused
past its check.

`exchange` answers with an `Answer`, or raises `ExchangeFailed` whose message
says, in words a user can act on, why no answer came.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.ssl_match_hostname import CertificateError

from .guard import PinnedTarget

_READ_SIZE = 16384
# Failures of the network, of TLS or of the HTTP exchange: they end the exchange.
NETWORK_ERRORS = (HTTPError, http.client.HTTPException, OSError, CertificateError)


@dataclass(frozen=True)
class Answer:
    """What the other side answered: its status, headers and the start of its body."""

    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive, as urllib3 gives them
    body: bytes  # at most the exchange's `max_body_bytes`
    truncated: bool  # the body went on past `max_body_bytes`


class ExchangeFailed(Exception):
    """No answer came (no connection, a timeout, a broken exchange); the message says why."""


class _NoConnection(Exception):
    """The connection (TCP, then TLS) could not be made; the message says why."""


class _Deadline:
    """The end of an exchange's total time: at it the connection is cut, whatever the
    exchange is waiting for (a server could dribble its headers a byte at a time).
    The cut comes from a timer: a thread, or a greenlet under gevent."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.passed = False
        self._connection: HTTPConnection | None = None
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    @contextmanager
    def guarding(self, connection: HTTPConnection) -> Iterator[None]:
        """Cut `connection` if the deadline passes before the block is done."""
        self._connection = connection
        self._timer.start()
        try:
            yield
        finally:
            self._timer.cancel()

    def _cut(self) -> None:
        self.passed = True  # set before looking for the socket: see `_send`
        sock = getattr(self._connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked on it
            except OSError:
                pass  # closed already


def exchange(pinned: PinnedTarget, method: str, body: bytes | None,
             headers: Mapping[str, str], *, connect_timeout: float, read_timeout: float,
             total_timeout: float, max_body_bytes: int) -> Answer:
    """Send one request to the pinned address and read its answer, within the times
    and up to `max_body_bytes` of body; `ExchangeFailed` if no answer came."""
    connection = _connection_to(pinned, min(connect_timeout, total_timeout))
    deadline = _Deadline(total_timeout)
    response: BaseHTTPResponse | None = None
    try:
        with deadline.guarding(connection):
            response = _send(connection, pinned, method, body, headers, read_timeout, deadline)
            received, truncated = _read_body(response, max_body_bytes, deadline)
    except (_NoConnection, *NETWORK_ERRORS) as exc:
        raise ExchangeFailed(_describe_failure(exc, pinned, deadline, read_timeout)) from exc
    finally:
        if response is not None:
            response.close()
        connection.close()
    return Answer(status=response.status, reason=response.reason or "",
                  headers=response.headers, body=received, truncated=truncated)


def _connection_to(pinned: PinnedTarget, connect_timeout: float) -> HTTPConnection:
    """A connection to the pinned address that presents the target's name for TLS."""
    target = pinned.target
    if target.scheme == "http":
        return HTTPConnection(pinned.address, target.port, timeout=connect_timeout)
    return HTTPSConnection(pinned.address, target.port, timeout=connect_timeout,
                           server_hostname=target.host, assert_hostname=target.host)


def _send(connection: HTTPConnection, pinned: PinnedTarget, method: str, body: bytes | None,
          headers: Mapping[str, str], read_timeout: float,
          deadline: _Deadline) -> BaseHTTPResponse:
    """Connect, send the request and read the answer's status and headers."""
    try:
        connection.connect()
    except NETWORK_ERRORS as exc:
        raise _NoConnection(_connect_failure(exc, connection)) from exc
    # The deadline sets `passed` before it looks for the socket, and connect() sets the
    # socket before this check: one of the two sees the other, so none is missed.
    if deadline.passed:
        raise TimeoutError("the total time ran out while connecting")
    connection.timeout = read_timeout  # for every send and receive from now on
    sent_headers = {name: value for name, value in headers.items() if name.lower() != "host"}
    sent_headers["Host"] = pinned.target.host_header
    connection.request(method, pinned.target.path_and_query, body=body, headers=sent_headers,
                       preload_content=False, decode_content=False)
    response = connection.getresponse()
    if deadline.passed:  # the cut may have ended the headers early: the status is unsure
        response.close()
        raise TimeoutError("the total time ran out before the answer's headers ended")
    return response


def _read_body(response: BaseHTTPResponse, limit: int,
               deadline: _Deadline) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the answer's body (those that come before the deadline),
    and whether more was left unread."""
    received = bytearray()
    try:
        while len(received) <= limit and not deadline.passed:
            chunk = response.read1(min(_READ_SIZE, limit + 1 - len(received)))
            if not chunk:
                break
            received += chunk
    except NETWORK_ERRORS:
        pass  # the status has come: the rest of the body only adds detail
    return bytes(received[:limit]), len(received) > limit


def _connect_failure(exc: BaseException, connection: HTTPConnection) -> str:
    """Why no connection could be made: a timeout, a refusal, a TLS failure."""
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError, sadly
        return str(exc.__cause__ or exc)  # the OSError it wraps says it best
    if isinstance(exc, ConnectTimeoutError):
        return f"no connection within {connection.timeout:g}s"
    return str(exc)


def _describe_failure(exc: BaseException, pinned: PinnedTarget, deadline: _Deadline,
                      read_timeout: float) -> str:
    """Why an exchange got no answer, in words a user can act on."""
    where = f"{pinned.target.host_header} ({pinned.address})"
    if deadline.passed:
        return f"{where} did not answer within the total time of {deadline.seconds:g}s"
    if isinstance(exc, _NoConnection):
        return f"cannot connect to {where}: {exc}"
    if isinstance(exc, TimeoutError):
        return f"{where} went silent for more than {read_timeout:g}s"
    return f"the exchange with {where} failed: {exc}"


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started`, a `time.monotonic()` reading."""
    return round((time.monotonic() - started) * 1000)
