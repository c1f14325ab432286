"""Helpers for the hostile-input tests: a raw HTTP client for requests no library
would send, and the checks every refused request must pass against a live server."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from .live_server import LiveServer


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class NoAnswer(AssertionError):
    """The server closed the connection without answering."""


def raw_request(server: LiveServer, data: bytes, timeout: float = 10,
                half_close: bool = False) -> RawAnswer:
    """Send `data` as it is over a new connection and read the first answer.
    `half_close`: then end the sending side, so the server sees the body end there."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking all of it
        received = b""
        while b"\r\n\r\n" not in received:
            piece = _recv(sock)
            if not piece:
                raise NoAnswer(f"connection closed before an answer: {received!r}")
            received += piece
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            piece = _recv(sock)
            if not piece:
                break
            body += piece
        return RawAnswer(int(status_line.split()[1]), headers, body[:length])


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def assert_json_error(status: int, content_type: str, body: bytes,
                      allowed: set[int] | None = None) -> str:
    """A 4xx (or one of the `allowed` statuses) with `{"error": {"code", "message"}}`;
    returns the code."""
    if allowed is None:
        assert 400 <= status < 500, (status, body[:300])
    else:
        assert status in allowed, (status, body[:300])
    assert content_type.split(";")[0].strip() == "application/json", (content_type, body[:300])
    error = json.loads(body)["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error["code"]


def assert_refused(response: requests.Response, allowed: set[int] | None = None) -> str:
    return assert_json_error(response.status_code, response.headers.get("Content-Type", ""),
                             response.content, allowed)


def stored_state(server: LiveServer, thread_id: str) -> tuple[list[dict], list[dict]]:
    """Every thread, and every message of `thread_id`: what a refused request must not
    change."""
    threads = server.api("GET", "/api/v1/threads").json()["threads"]
    return threads, server.messages(thread_id)


def answered_thread(server: LiveServer) -> dict[str, str]:
    """A thread with one finished answer: `thread_id` and the answer's `stream_id`."""
    thread_id = server.new_thread(title="probe")
    answer = server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                        json={"content": "hello"}).json()["response"]
    return {"thread_id": thread_id, "stream_id": answer["stream_id"]}


@contextmanager
def nothing_changes(server: LiveServer, probe: dict[str, str]) -> Iterator[None]:
    """Asserts on leaving that nothing stored changed and the log gained no traceback."""
    before = stored_state(server, probe["thread_id"])
    offset = server.log_size()
    yield
    assert stored_state(server, probe["thread_id"]) == before
    server.assert_log_clean(since=offset)
