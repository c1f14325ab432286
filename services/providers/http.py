"""What the HTTP-based adapters share: a pooled session, POSTing with errors mapped
to the provider exception tree, reading a streamed body safely, and handing its
connection back to the pool when the stream has ended.

The request path is kept short because every answer pays for it before its
first token: a `PreparedRequest` goes straight to `Session.send`, with the
proxy and CA-bundle settings from the environment resolved once per client
(requests would look them up, and read ~/.netrc, on every call).
"""
from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (ConnectTimeoutError, HTTPError, NameResolutionError,
                                NewConnectionError, ReadTimeoutError)
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT
from urllib3.poolmanager import pool_classes_by_scheme as URLLIB3_POOL_CLASSES

from .calls import UpstreamCall, current_call, shutdown_socket
from .errors import (ProviderConnectionError, ProviderTimeoutError, UpstreamStreamError,
                     status_error)


def shutdown_response(response: requests.Response) -> None:
    """Cut a streamed response's connection, from any thread or greenlet.

    The reader blocked on it wakes up (a plain thread blocked in recv() only wakes
    on a shutdown; closing the response from outside the reader is not safe
    under gevent), and closes the response itself when its iteration ends.
    """
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        shutdown_socket(sock)
        return
    try:
        if connection is not None:
            # A close-delimited body owns the socket (http.client handed it over and
            # the connection's `sock` is None); urllib3 still reaches it.
            response.raw.shutdown()
    except (OSError, ValueError, RuntimeError):
        pass  # already closed by the peer or by the reader


# Idle connections kept per provider host: as many as a worker has streams (gunicorn's
# default worker_connections), so a burst's connections are reused, not discarded.
POOL_SIZE = 1000
# After a stream's last event, the rest of the body (the terminating chunk, as a rule)
# is read for this long at most; a body that does not end by then costs its connection.
DRAIN_SECONDS = 0.05
DRAIN_BYTES = 64 * 1024


class _CallConnectionMixin:
    """Tells the thread's current `UpstreamCall` the socket its request goes out on,
    before it connects and before any response exists, so the call can be cut while
    connecting (a host that drops the handshake) or waiting for headers."""

    sock: socket.socket | None
    upstream_call: UpstreamCall | None = None
    # urllib3's HTTPConnection has these.
    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        """urllib3's connect, on a socket that the call holds before it connects."""
        call = current_call()
        if call is None:
            return super()._new_conn()  # type: ignore[misc]
        self.upstream_call = call  # HTTPS connects before `request`
        try:
            return _connect(call, self, (self._dns_host, self.port), self.timeout,
                            self.source_address, self.socket_options)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. "
                                      f"(connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(  # type: ignore[arg-type]
                self, f"Failed to establish a new connection: {exc}") from exc

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._attach()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self.upstream_call = current_call()
        if self.sock is not None:  # a reused connection, or HTTPS connected already
            self._attach()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _attach(self) -> None:
        if self.upstream_call is not None and self.sock is not None:
            self.upstream_call.attach(self, self.sock)


def _connect(call: UpstreamCall, owner: object, address: tuple[str, int], timeout: Any,
             source_address: tuple[str, int] | None,
             options: list[tuple[int, int, int | bytes]] | None) -> socket.socket:
    """Connect to each of the host's addresses in turn, as urllib3 does, with each
    socket attached to `call` before its connect begins."""
    host, port = address
    error: OSError = OSError(f"no address found for {host!r}")
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(
            host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            if not call.attach(owner, sock):
                raise ConnectionAbortedError("the call was stopped before it connected")
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
            if isinstance(exc, ConnectionAbortedError):
                break
    raise error


class _CallHTTPConnection(_CallConnectionMixin, HTTPConnection):
    pass


class _CallHTTPSConnection(_CallConnectionMixin, HTTPSConnection):
    pass


class _CallHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CallHTTPConnection


class _CallHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CallHTTPSConnection


_CALL_POOL_CLASSES = {"http": _CallHTTPConnectionPool, "https": _CallHTTPSConnectionPool}


class _CallAdapter(HTTPAdapter):
    """requests' adapter with connections that an `UpstreamCall` can reach."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _CALL_POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme is URLLIB3_POOL_CLASSES:  # not SOCKS' own
            manager.pool_classes_by_scheme = _CALL_POOL_CLASSES
        return manager


def pooled_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """A session whose connection pool fits many concurrent streams to one host, on
    connections that the current `UpstreamCall` can cut in every phase."""
    session = requests.Session()
    adapter = _CallAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class HttpClient:
    """POSTs JSON to one provider; raises `ProviderError`s, never `requests` ones."""

    def __init__(self, provider: str, base_url: str, headers: dict[str, str],
                 session: requests.Session, connect_timeout: float,
                 read_timeout: float) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = {**session.headers, **headers}  # merged once, not per request
        self.session = session
        self.timeout = (connect_timeout, read_timeout)
        # Proxies (HTTPS_PROXY, NO_PROXY), CA bundle (REQUESTS_CA_BUNDLE) for this host.
        # No ~/.netrc: the provider's own key is the only credential sent.
        settings = session.merge_environment_settings(self.base_url, {}, None, None, None)
        self._environment = {key: settings[key] for key in ("proxies", "verify", "cert")}
        self._cookies = RequestsCookieJar()  # always empty: providers get no cookies back

    def post(self, path: str, payload: dict[str, Any], stream: bool) -> requests.Response:
        """POST `payload`; a non-2xx answer is read and raised as its status error."""
        request = requests.PreparedRequest()
        try:
            request.prepare(method="POST", url=self.base_url + path, headers=self.headers,
                            json=payload, cookies=self._cookies)
            response = self.session.send(request, timeout=self.timeout, stream=stream,
                                         **self._environment)
        except requests.Timeout as exc:
            raise ProviderTimeoutError(f"{self.provider} did not answer in time: {exc}") from exc
        except requests.RequestException as exc:
            raise ProviderConnectionError(f"cannot reach {self.provider}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.text
            except requests.RequestException:
                body = ""
            finally:
                response.close()
            raise status_error(response.status_code, body, self.provider, response.headers)
        return response

    def post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST without streaming and return the JSON object answered."""
        response = self.post(path, payload, stream=False)
        try:
            body = response.json()
        except ValueError as exc:
            raise UpstreamStreamError(
                f"{self.provider} answered with a body that is not JSON") from exc
        finally:
            response.close()
        if not isinstance(body, dict):
            raise UpstreamStreamError(f"{self.provider} answered with an unexpected body")
        return body

    def chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The body as it arrives, with transport failures mapped to our exceptions.

        `read1` returns as soon as any bytes are there, for chunked and for
        close-delimited bodies alike (`iter_content(None)` would wait for the end
        of a close-delimited one).
        """
        raw = response.raw
        try:
            while data := raw.read1(65536):
                yield data
        except ReadTimeoutError as exc:
            raise ProviderTimeoutError(
                f"{self.provider} went silent for more than {self.timeout[1]:g}s") from exc
        except (HTTPError, OSError) as exc:
            raise ProviderConnectionError(
                f"the connection to {self.provider} broke: {exc}") from exc

    @staticmethod
    def release(response: requests.Response) -> None:
        """The stream's last event has been read: read what is left of the body, so
        that its connection goes back to the pool for the next answer (urllib3 returns
        it as soon as the body has ended). A body that does not end within
        `DRAIN_SECONDS` is cut when the response is closed."""
        raw = response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is None:
            return  # already back in the pool, or closed
        try:
            sock.settimeout(DRAIN_SECONDS)  # urllib3 sets it again for the next request
            left = DRAIN_BYTES
            while left > 0 and (data := raw.read1(left)):
                left -= len(data)
        except (HTTPError, OSError):
            pass  # the connection is closed, not reused
