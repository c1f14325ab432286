"""What the HTTP-based adapters share: a pooled session, POSTing with errors mapped
to the provider exception tree, and reading a streamed body safely."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError, ReadTimeoutError

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
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by the peer or by the reader


def pooled_session(pool_size: int = 100) -> requests.Session:
    """A session whose connection pool fits many concurrent streams to one host."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
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
        self.headers = headers
        self.session = session
        self.timeout = (connect_timeout, read_timeout)

    def post(self, path: str, payload: dict[str, Any], stream: bool) -> requests.Response:
        """POST `payload`; a non-2xx answer is read and raised as its status error."""
        try:
            response = self.session.post(
                self.base_url + path, json=payload, headers=self.headers,
                timeout=self.timeout, stream=stream)
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
