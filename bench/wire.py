"""A minimal HTTP/1.1 client on raw sockets, cheap enough to read 100,000+ SSE events/s.

Used by the load generator (under gevent monkey-patching, so a socket waits
without blocking other streams). It sends one request per connection and reads
the response body as it arrives, undoing chunked transfer encoding. It also
splits SSE into events and counts what a benchmark needs, without decoding
every event's JSON.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

READ_SIZE = 65536
MAX_HEAD = 65536


class WireError(Exception):
    """The server broke HTTP (closed early, sent garbage)."""


@dataclass
class Response:
    """A response whose head has been read; `pieces()` yields the body as it comes."""

    sock: socket.socket
    status: int
    headers: dict[str, str]
    rest: bytes  # body bytes read together with the head

    def pieces(self) -> Iterator[bytes]:
        """The body as it arrives: chunked, by Content-Length, or until the peer closes."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            yield from dechunk(self.sock, self.rest)
            return
        length = self.headers.get("content-length")
        remaining = int(length) if length is not None else -1
        data = self.rest
        while True:
            if data:
                yield data
                remaining -= len(data)
            if remaining == 0:
                return
            data = self.sock.recv(READ_SIZE)
            if not data:
                if remaining > 0:
                    raise WireError("connection closed before the body's end")
                return

    def body(self) -> bytes:
        return b"".join(self.pieces())


def connect(port: int, timeout: float) -> socket.socket:
    """A connection to 127.0.0.1:`port` (a literal address: gevent resolves names in threads)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def encode_request(port: int, method: str, path: str, body: dict | None) -> bytes:
    """One request with `Connection: close`: every stream gets a connection of its own."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Accept: text/event-stream, application/json\r\nConnection: close\r\n")
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


def send(sock: socket.socket, data: bytes) -> Response:
    """Send an encoded request on a connected socket and read the response head."""
    try:
        sock.sendall(data)
        return read_head(sock)
    except BaseException:
        sock.close()
        raise


def request(port: int, method: str, path: str, body: dict | None,
            timeout: float) -> Response:
    """Connect, send, and read the response head."""
    return send(connect(port, timeout), encode_request(port, method, path, body))


def read_head(sock: socket.socket) -> Response:
    """Status and headers of a response; body bytes read along with them are kept."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(READ_SIZE)
        if not data:
            raise WireError("connection closed before a response head")
        buffer += data
        if len(buffer) > MAX_HEAD:
            raise WireError("response head too long")
    head, rest = buffer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(sock, status, headers, rest)


def dechunk(sock: socket.socket, buffer: bytes) -> Iterator[bytes]:
    """Chunked-encoded body -> the data of all complete chunks, once per network read."""
    pos = 0
    while True:
        out = []
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                break
            size = int(buffer[pos:line_end].split(b";", 1)[0], 16)
            if size == 0:
                if out:
                    yield b"".join(out)
                return
            start = line_end + 2
            if len(buffer) < start + size + 2:
                break
            out.append(buffer[start:start + size])
            pos = start + size + 2
        if out:
            yield b"".join(out)
        data = sock.recv(READ_SIZE)
        if not data:
            raise WireError("connection closed inside a chunked body")
        buffer = buffer[pos:] + data
        pos = 0


@dataclass
class SSECounter:
    """Counts content events in an SSE body, for Sluice's format or OpenAI's.

    Sluice: `event: delta` frames are content; `event: done` carries the status.
    OpenAI: `data: {...}` chunks with "content" are content; `data: [DONE]` ends it.
    """

    chunks: int = 0
    done_status: str | None = None  # "complete", "error", ... once the end is seen
    _pending: bytes = field(default=b"", repr=False)

    def feed(self, data: bytes) -> bool:
        """Take body bytes; True once the stream's end event has been seen."""
        events = (self._pending + data).split(b"\n\n")
        self._pending = events.pop()
        for event in events:
            if b"event: delta\n" in event or (b"data: {" in event and b'"content"' in event
                                                and b"event:" not in event):
                self.chunks += 1
            elif b"event: done\n" in event:
                self.done_status = _done_status(event)
            elif b"data: [DONE]" in event:
                self.done_status = "complete"
        return self.done_status is not None


def _done_status(event: bytes) -> str:
    """The `status` of a Sluice `done` event (only this event's JSON is decoded)."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                return str(json.loads(line[5:]).get("status"))
            except ValueError:
                return "unreadable"
    return "missing"
