"""A local stand-in for a provider's HTTP API that replays recorded wire bodies.

Each test registers replies under a model name of its own (`server.script(model,
Reply(...))`) and then asks Sluice for that model; the server answers the next
request naming that model with the reply, written in the pieces the reply asks
for (every byte on its own, say, to split UTF-8 characters and CR from LF).
It records each request body and notices when its client hangs up.
"""
from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).with_name("fixtures")


def fixture(name: str) -> bytes:
    """A recorded body from tests/fixtures, byte for byte."""
    return (FIXTURES / name).read_bytes()


def pieces(body: bytes, size: int) -> list[bytes]:
    return [body[i:i + size] for i in range(0, len(body), size)]


def sse_events_of(body: bytes) -> list[bytes]:
    """A recorded SSE body cut into its events, each with its blank line."""
    return [event + b"\n\n" for event in body.split(b"\n\n") if event]


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/event-stream"
    chunk_size: int = 0  # 0: the whole body in one write
    delay: float = 0.0  # seconds between pieces
    chunked: bool = True  # Transfer-Encoding: chunked, else close-delimited
    then_hang: float = 0.0  # stay silent this long after the body, connection open
    hold: float = 0.0  # take the request, then send nothing (not even headers) this long
    http10: bool = False  # an HTTP/1.0 status line: no chunking, the body ends at close
    headers: dict[str, str] = field(default_factory=dict)
    split_at: list[bytes] | None = None  # explicit pieces instead of `body`
    # Computes the body from the request's JSON (an embeddings server), instead of `body`.
    answer: Callable[[dict], bytes] | None = None

    def parts(self) -> list[bytes]:
        if self.split_at is not None:
            return self.split_at
        return pieces(self.body, self.chunk_size) if self.chunk_size else [self.body]


class QuietHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server that does not report clients hanging up as errors."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients dropping idle keep-alive connections is normal, not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeUpstream:
    def __init__(self) -> None:
        self._replies: dict[str, list[Reply]] = defaultdict(list)
        self.requests: dict[str, list[dict]] = defaultdict(list)
        self.hung_up: dict[str, threading.Event] = {}
        self.finished: dict[str, threading.Event] = {}  # the whole reply was written
        self._lock = threading.Lock()
        self._server = QuietHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, model: str, *replies: Reply) -> None:
        """Answer the next requests for `model` with `replies`, in order; the last repeats.

        Starts `model` afresh: earlier replies, recorded requests and hang-ups are forgotten.
        """
        with self._lock:
            self._replies[model] = list(replies)
            self.requests[model] = []
            # Made here, before any request, so the test and the server share one Event.
            self.hung_up[model] = threading.Event()
            self.finished[model] = threading.Event()

    def _next_reply(self, model: str) -> Reply:
        with self._lock:
            queue = self._replies.get(model)
            if not queue:
                return Reply(json.dumps({"error": {"message": f"no script for {model}"}}).encode(),
                             status=404, content_type="application/json")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                model = payload.get("model", "")
                with upstream._lock:
                    upstream.requests[model].append(
                        {"path": self.path, "headers": dict(self.headers), "json": payload,
                         "at": time.monotonic(), "client_port": self.client_address[1]})
                reply = upstream._next_reply(model)
                if reply.answer is not None:
                    reply = replace(reply, body=reply.answer(payload), answer=None)
                try:
                    self._wait(reply.hold)
                    self._send(reply)
                    if model in upstream.finished:
                        upstream.finished[model].set()
                except (BrokenPipeError, ConnectionResetError):
                    if model in upstream.hung_up:
                        upstream.hung_up[model].set()
                    self.close_connection = True

            def _wait(self, seconds: float) -> None:
                """Sleep, but return early (and record it) if the client hangs up."""
                deadline = time.monotonic() + seconds
                while (left := deadline - time.monotonic()) > 0:
                    readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        raise ConnectionResetError("client hung up")

            def _send(self, reply: Reply) -> None:
                chunked = reply.chunked and not reply.http10
                if reply.http10:
                    self.protocol_version = "HTTP/1.0"  # this response's, not the class's
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                for index, part in enumerate(reply.parts()):
                    if index and reply.delay:
                        self._wait(reply.delay)
                    frame = b"%x\r\n%s\r\n" % (len(part), part) if chunked else part
                    self.wfile.write(frame)
                    self.wfile.flush()
                if reply.then_hang:
                    self._wait(reply.then_hang)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()

        return Handler


# Upstreams that took the request and then went silent, in the two phases before a
# response has a body to read: no headers yet, and HTTP/1.0 headers with no body yet.
SILENT_UPSTREAMS = {
    "no-headers": Reply(hold=60),
    "http10-headers-only": Reply(http10=True, then_hang=60),
}


def openai_text_reply(text: str, deltas: int = 1, delay: float = 0.0) -> Reply:
    """An OpenAI chat stream whose answer is `text`, cut into `deltas` about equal
    pieces sent `delay` seconds apart (so the page repaints half-written HTML)."""
    size = max(1, -(-len(text) // deltas))
    events = []
    for start in range(0, len(text), size):
        delta = {"choices": [{"index": 0, "delta": {"content": text[start:start + size]}}]}
        events.append(f"data: {json.dumps(delta)}\n\n")
    events.append('data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
                  "data: [DONE]\n\n")
    return Reply(split_at=[event.encode() for event in events], delay=delay)
