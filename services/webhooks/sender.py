"""One delivery attempt: a POST to a pinned address, bounded in time and in size.

The connection goes to the address `guard.resolve` checked and to no other: the
name is sent only as `Host`, and for https as the TLS server name, so the
receiver's certificate is still verified for the name (against the system's
trust store, or the file SSL_CERT_FILE names). Redirects are never followed (a
receiver could send Sluice anywhere with one), proxies from the environment are
not used (a proxy would resolve the name again, unchecked), and each attempt has
a connection of its own, so nothing is reused past its check.

Whatever happens on the network, `post` answers with a `DeliveryAttempt`; it
raises only for a programming error.
"""
from __future__ import annotations

import email.utils
import http.client
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timezone

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.response import BaseHTTPResponse
from urllib3.util.ssl_match_hostname import CertificateError

from .guard import PinnedTarget

EXCERPT_CHARACTERS = 500
MAX_RETRY_AFTER = 6 * 3600.0
USER_AGENT = "Sluice-Webhooks/1"
_READ_SIZE = 16384
# Failures of the network, of TLS or of the HTTP exchange: they end the attempt.
NETWORK_ERRORS = (HTTPError, http.client.HTTPException, OSError, CertificateError)


@dataclass(frozen=True)
class DeliveryAttempt:
    """How one attempt went, as the delivery's history keeps it."""

    status_code: int | None  # None: no answer came
    duration_ms: int
    response_excerpt: str  # the start of the receiver's answer, for the user to read
    error: str | None  # why the attempt failed, in words; None once delivered
    retry_after: float | None  # seconds the receiver asked to wait, at most six hours
    delivered: bool  # the receiver answered 2xx
    retryable: bool  # trying again later may succeed


class _NoConnection(Exception):
    """The connection (TCP, then TLS) could not be made; the message says why."""


class _Deadline:
    """The end of an attempt's total time: at it the connection is cut, whatever the
    attempt is waiting for (a receiver could dribble its headers a byte at a time).
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
        self.passed = True  # set before looking for the socket: see `_exchange`
        sock = getattr(self._connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked on it
            except OSError:
                pass  # closed already


def post(pinned: PinnedTarget, body: bytes, headers: Mapping[str, str], *,
         connect_timeout: float = 5.0, read_timeout: float = 10.0,
         total_timeout: float = 15.0, max_response_bytes: int = 65536) -> DeliveryAttempt:
    """POST `body` to the pinned address once and report how it went."""
    started = time.monotonic()
    connection = _connection_to(pinned, min(connect_timeout, total_timeout))
    deadline = _Deadline(total_timeout)
    response: BaseHTTPResponse | None = None
    try:
        with deadline.guarding(connection):
            response = _exchange(connection, pinned, body, headers, read_timeout, deadline)
            answer = _read_answer(response, max_response_bytes, deadline)
    except (_NoConnection, *NETWORK_ERRORS) as exc:
        return DeliveryAttempt(
            status_code=None, duration_ms=_elapsed_ms(started), response_excerpt="",
            error=_describe_failure(exc, pinned, deadline, read_timeout),
            retry_after=None, delivered=False, retryable=True)
    finally:
        if response is not None:
            response.close()
        connection.close()
    return _judge(response, answer, _elapsed_ms(started))


def _connection_to(pinned: PinnedTarget, connect_timeout: float) -> HTTPConnection:
    """A connection to the pinned address that presents the target's name for TLS."""
    target = pinned.target
    if target.scheme == "http":
        return HTTPConnection(pinned.address, target.port, timeout=connect_timeout)
    return HTTPSConnection(pinned.address, target.port, timeout=connect_timeout,
                           server_hostname=target.host, assert_hostname=target.host)


def _exchange(connection: HTTPConnection, pinned: PinnedTarget, body: bytes,
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
    connection.request("POST", pinned.target.path_and_query, body=body,
                       headers=_request_headers(headers, pinned.target.host_header),
                       preload_content=False, decode_content=False)
    response = connection.getresponse()
    if deadline.passed:  # the cut may have ended the headers early: the status is unsure
        response.close()
        raise TimeoutError("the total time ran out before the answer's headers ended")
    return response


def _request_headers(headers: Mapping[str, str], host_header: str) -> dict[str, str]:
    """The caller's headers with `Host` set to the target's (whatever the caller gave,
    in any case) and Sluice's `User-Agent` unless the caller named one."""
    names = {name.lower() for name in headers}
    merged = {} if "user-agent" in names else {"User-Agent": USER_AGENT}
    merged.update((name, value) for name, value in headers.items() if name.lower() != "host")
    merged["Host"] = host_header
    return merged


def _read_answer(response: BaseHTTPResponse, limit: int, deadline: _Deadline) -> bytes:
    """Up to `limit` bytes of the answer's body: those that come before the deadline."""
    received = bytearray()
    try:
        while len(received) < limit and not deadline.passed:
            chunk = response.read1(min(_READ_SIZE, limit - len(received)))
            if not chunk:
                break
            received += chunk
    except NETWORK_ERRORS:
        pass  # the status has come: the rest of the body only adds detail
    return bytes(received)


def _judge(response: BaseHTTPResponse, answer: bytes, duration_ms: int) -> DeliveryAttempt:
    """The attempt's outcome from the receiver's status: 2xx is delivered; 408, 429,
    5xx and redirects are worth another try; any other 4xx is not."""
    status = response.status
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    excerpt = answer.decode("utf-8", errors="replace")[:EXCERPT_CHARACTERS]
    delivered = 200 <= status < 300
    if delivered:
        error = None
    elif 300 <= status < 400:
        location = _shortened(response.headers.get("Location") or "none")
        error = f"redirects are not followed (Location: {location})"
    else:
        error = f"the receiver answered {status} {_shortened(response.reason or '')}".rstrip()
    retryable = not delivered and (not 400 <= status < 500 or status in (408, 429))
    return DeliveryAttempt(status_code=status, duration_ms=duration_ms,
                           response_excerpt=excerpt, error=error, retry_after=retry_after,
                           delivered=delivered, retryable=retryable)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """The seconds a `Retry-After` header asks to wait (it holds seconds or an HTTP
    date), at most six hours; None if there is none or it cannot be read."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), MAX_RETRY_AFTER))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=timezone.utc)
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _connect_failure(exc: BaseException, connection: HTTPConnection) -> str:
    """Why no connection could be made: a timeout, a refusal, a TLS failure."""
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError, sadly
        return str(exc.__cause__ or exc)  # the OSError it wraps says it best
    if isinstance(exc, ConnectTimeoutError):
        return f"no connection within {connection.timeout:g}s"
    return str(exc)


def _describe_failure(exc: BaseException, pinned: PinnedTarget, deadline: _Deadline,
                      read_timeout: float) -> str:
    """Why an attempt got no answer, in words a user can act on."""
    where = f"{pinned.target.host_header} ({pinned.address})"
    if deadline.passed:
        return f"{where} did not answer within the total time of {deadline.seconds:g}s"
    if isinstance(exc, _NoConnection):
        return f"cannot connect to {where}: {exc}"
    if isinstance(exc, TimeoutError):
        return f"{where} went silent for more than {read_timeout:g}s"
    return f"the exchange with {where} failed: {exc}"


def _shortened(text: str, limit: int = 200) -> str:
    """Text a receiver sent, cut to a length fit for an error message."""
    return text if len(text) <= limit else text[:limit] + "…"


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
