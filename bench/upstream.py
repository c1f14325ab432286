"""A fast fake OpenAI Chat Completions server for the benchmarks, in its own process.

    python -m bench.upstream --port 8081     # prints "listening 8081" once it accepts

It is a gevent server on raw sockets, so it is never what limits a measurement:
a whole answer without gaps is one prebuilt byte string sent with one write.
How to answer is chosen by the model name, so that a client going through
Sluice (which passes `openai/<name>` on as `<name>`) picks it per request:

    c200      200 content chunks (then a finish chunk, a usage chunk, [DONE])
    g20       20 ms between chunks (0, the default, writes the answer at once)
    h         hold: send the first chunk, then wait for POST /release

e.g. `c50-g20` or `c10-h`. `GET /stats` answers counters as JSON. Only loopback.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import BinaryIO  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
MAX_HEAD_LINES = 100
MAX_BODY = 4 * 1024 * 1024


def http_chunk(data: bytes) -> bytes:
    """`data` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_chunk(payload: dict) -> bytes:
    """One Chat Completions stream chunk as an SSE event inside an HTTP chunk."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
            "model": "bench"}
    return http_chunk(b"data: " + json.dumps({**base, **payload}).encode() + b"\n\n")


CONTENT = sse_chunk({"choices": [{"index": 0, "delta": {"content": "tok "},
                                  "finish_reason": None}]})
TAIL = (sse_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        + sse_chunk({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}})
        + http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")


@dataclass(frozen=True)
class Plan:
    """How to answer one request, read from the model name."""

    chunks: int = 10
    gap: float = 0.0  # seconds
    hold: bool = False

    @classmethod
    def parse(cls, model: str) -> Plan:
        chunks = re.search(r"(?:^|-)c(\d+)", model)
        gap = re.search(r"(?:^|-)g(\d+(?:\.\d+)?)", model)
        return cls(max(1, min(int(chunks.group(1)), 1_000_000)) if chunks else 10,
                   float(gap.group(1)) / 1000 if gap else 0.0,
                   bool(re.search(r"(?:^|-)h(?:-|$)", model)))


class Upstream:
    """Request handling and the shared state: counters and the release signal."""

    def __init__(self, max_hold: float) -> None:
        self.max_hold = max_hold
        self.release_event = Event()
        self.stats = {"requests": 0, "active": 0, "held": 0, "completed": 0}
        self._bodies: dict[int, bytes] = {}

    def whole_answer(self, chunks: int) -> bytes:
        """The full response for `chunks` chunks, built once per size."""
        if chunks not in self._bodies:
            self._bodies[chunks] = HEAD + CONTENT * chunks + TAIL
        return self._bodies[chunks]

    def handle(self, sock: socket.socket, _address: object) -> None:
        """Serve requests on one connection until the peer closes it (keep-alive)."""
        reader = sock.makefile("rb")
        try:
            while self._one_request(sock, reader):
                pass
        except (OSError, ValueError):
            pass  # a client that went away mid-answer is normal here
        finally:
            reader.close()
            sock.close()

    def _one_request(self, sock: socket.socket, reader: BinaryIO) -> bool:
        """Read one request and answer it; False when the connection should close."""
        request_line = reader.readline(65536)
        if not request_line.strip():
            return False
        _method, path, _version = request_line.split(b" ", 2)
        length, keep_alive = 0, True
        for _ in range(MAX_HEAD_LINES):
            line = reader.readline(65536)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = min(int(value), MAX_BODY)
            elif name.strip().lower() == b"connection":
                keep_alive = value.strip().lower() != b"close"
        body = reader.read(length) if length else b""
        self.stats["requests"] += 1
        if path.endswith(b"/chat/completions"):
            self._answer(sock, Plan.parse(str(json.loads(body or b"{}").get("model", ""))))
        elif path == b"/release":
            self.release_event.set()
            self.release_event = Event()
            self._small(sock, b"released")
        elif path == b"/stats":
            self._small(sock, json.dumps(self.stats).encode())
        else:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return keep_alive

    @staticmethod
    def _small(sock: socket.socket, body: bytes) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def _answer(self, sock: socket.socket, plan: Plan) -> None:
        """Stream one answer: at once, paced by `gap`, or held after its first chunk."""
        self.stats["active"] += 1
        try:
            if plan.gap == 0 and not plan.hold:
                sock.sendall(self.whole_answer(plan.chunks))
            else:
                self._paced(sock, plan)
            self.stats["completed"] += 1
        finally:
            self.stats["active"] -= 1

    def _paced(self, sock: socket.socket, plan: Plan) -> None:
        """Chunk by chunk: the first at once, the rest `gap` apart (after a release, if held)."""
        sock.sendall(HEAD + CONTENT)
        if plan.hold:
            released = self.release_event
            self.stats["held"] += 1
            try:
                released.wait(self.max_hold)
            finally:
                self.stats["held"] -= 1
        for _ in range(plan.chunks - 1):
            if plan.gap:
                gevent.sleep(plan.gap)
            sock.sendall(CONTENT)
        sock.sendall(TAIL)


def main() -> None:
    """Serve on the given loopback port until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-hold", type=float, default=300.0,
                        help="seconds a held answer waits for /release at most")
    args = parser.parse_args()
    upstream = Upstream(args.max_hold)
    server = StreamServer(("127.0.0.1", args.port), upstream.handle, backlog=4096)
    server.init_socket()
    print(f"listening {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
