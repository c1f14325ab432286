"""Benchmark: what one gunicorn + gevent worker costs per open stream, and how much
latency Sluice adds between a provider's token and the client, over SSE and over
Socket.IO (WebSocket).

    .venv/bin/python -m bench.streams --streams 300 --socket-streams 100

(`make bench` runs the fuller comparison in bench/compare.py, which measures
memory per open SSE stream too; this script stays for its per-token latency and
for putting the two transports side by side.)

Everything runs on 127.0.0.1: a Sluice on real gunicorn (one gevent worker,
SQLite), and a local OpenAI-style upstream that stamps each token with the time
it was written. Each memory figure is taken on a fresh server, so that memory
freed by the previous one cannot absorb its growth. Prints numbers; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import requests

from bench import sockets
from tests.fake_upstream import QuietHTTPServer
from tests.live_server import LiveServer
from services.sse import iter_sse
from tests.sse_client import body_chunks, read_stream


class StampingUpstream(BaseHTTPRequestHandler):
    """Chat Completions stream whose every token is the time it was sent."""

    protocol_version = "HTTP/1.1"
    tokens = 50
    gap = 0.02

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(self.tokens):
            time.sleep(self.gap)
            chunk = {"choices": [{"index": 0, "delta": {"content": f"{time.time():.6f} "},
                                  "finish_reason": None}]}
            self._write(f"data: {json.dumps(chunk)}\n\n".encode())
        self._write(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
        self._write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def worker_rss_kib(server: LiveServer) -> int:
    """Resident memory of the server's (single) worker process."""
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def open_streams(server: LiveServer, count: int) -> list[tuple[requests.Response, str]]:
    """`count` demo streams held open (each has sent its first delta)."""
    def one(_: int) -> tuple[requests.Response, str]:
        thread_id = server.new_thread()
        response = server.open_stream(thread_id, "hold this stream open")
        events = read_stream(response)
        stream_id = next(events).data["stream_id"]
        next(e for e in events if e.event == "delta")
        return response, stream_id

    with ThreadPoolExecutor(max_workers=min(count, 200)) as pool:
        return list(pool.map(one, range(count)))


def rss_growth(server: LiveServer, open_held: Callable[[], object]) -> tuple[int, int, float]:
    """The worker's RSS (KiB) before and after `open_held()`, and the seconds it took."""
    time.sleep(1)
    before = worker_rss_kib(server)
    started = time.monotonic()
    open_held()
    opened_in = time.monotonic() - started
    time.sleep(1)
    return before, worker_rss_kib(server), opened_in


def report_memory(what: str, count: int, per: str, growth: tuple[int, int, float]) -> None:
    before, after, opened_in = growth
    print(f"{what:<44} {(after - before) / count:6.1f} KiB per {per}   "
          f"(RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB, opened in {opened_in:.1f} s)")


def sse_memory(server: LiveServer, count: int) -> None:
    """Worker RSS per open SSE response, each following one answer."""
    open_streams(server, 5)  # warm up imports, pools and caches
    held: list[tuple[requests.Response, str]] = []
    growth = rss_growth(server, lambda: held.extend(open_streams(server, count)))
    report_memory(f"SSE: {count} responses, one answer each", count, "stream", growth)
    for response, stream_id in held:
        server.api("POST", f"/api/v1/streams/{stream_id}/cancel")
        response.close()


def socket_memory(server: LiveServer, count: int) -> None:
    """Worker RSS per open socket, each following one answer: the connection's cost
    and the answer's together."""
    warm = sockets.open_sockets(server, 5)
    held: list = []
    growth = rss_growth(server, lambda: held.extend(sockets.open_sockets(server, count)))
    report_memory(f"Socket.IO: {count} sockets, one answer each", count, "socket", growth)
    sockets.close_sockets(server, warm + held)


def one_socket_memory(server: LiveServer, count: int) -> None:
    """Worker RSS per answer followed on one shared socket: the answer's cost alone."""
    warm = sockets.open_one_socket(server, 5)
    held: list = []
    growth = rss_growth(server, lambda: held.extend(sockets.open_one_socket(server, count)))
    report_memory(f"Socket.IO: 1 socket following {count} answers", count, "stream", growth)
    sockets.close_sockets(server, warm + held)


def token_latencies(url: str, body: dict, concurrent: int) -> list[float]:
    """Per-token delay (ms) between the upstream writing a token and the client reading it."""
    def one(_: int) -> list[float]:
        response = requests.post(url, json=body, stream=True, timeout=60)
        delays = []
        for event in iter_sse(body_chunks(response)):
            if event.data == "[DONE]":
                break
            data = json.loads(event.data)
            text = data.get("content") if "content" in data else (
                (data.get("choices") or [{}])[0].get("delta", {}).get("content"))
            if text and event.event in ("delta", "message"):
                delays.append((time.time() - float(text)) * 1000)
            if data.get("type") == "done":
                break
        response.close()
        return delays

    with ThreadPoolExecutor(max_workers=concurrent) as pool:
        return [d for delays in pool.map(one, range(concurrent)) for d in delays]


def describe(delays: list[float]) -> str:
    q = statistics.quantiles(delays, n=100)
    return f"p50 {q[49]:6.2f} ms  p95 {q[94]:6.2f} ms  p99 {q[98]:6.2f} ms  (n={len(delays)})"


def added_latency(server: LiveServer, upstream_url: str, concurrent: int) -> None:
    direct = token_latencies(upstream_url + "/v1/chat/completions",
                             {"model": "stamp", "stream": True}, concurrent)

    # A thread holds one answer at a time, so each concurrent stream gets its own.
    def new_threads() -> list[str]:
        return [server.new_thread(model="openai/stamp") for _ in range(concurrent)]

    def one(thread: str) -> list[float]:
        return token_latencies(f"{server.url}/api/v1/threads/{thread}/messages/stream",
                               {"content": "stamp"}, 1)

    with ThreadPoolExecutor(max_workers=concurrent) as pool:
        via_sse = [d for delays in pool.map(one, new_threads()) for d in delays]
    via_socket = sockets.token_latencies(server, new_threads())
    print(f"{concurrent} concurrent answers of {StampingUpstream.tokens} tokens, "
          f"{StampingUpstream.gap * 1000:.0f} ms apart; a client (thread) per answer")
    print(f"upstream -> client direct             {describe(direct)}")
    print(f"upstream -> Sluice -> SSE client      {describe(via_sse)}")
    print(f"upstream -> Sluice -> socket client   {describe(via_socket)}")
    for name, delays in (("SSE", via_sse), ("socket", via_socket)):
        print(f"added by Sluice over {name + ' (p50)':<16} "
              f"{statistics.median(delays) - statistics.median(direct):.2f} ms")


@contextmanager
def serving(upstream_url: str, connections: int) -> Iterator[LiveServer]:
    """A fresh Sluice (one worker, its own SQLite) whose demo answers stay open for
    minutes; tracebacks in its log are printed when it stops."""
    with tempfile.TemporaryDirectory() as workdir:
        server = LiveServer(Path(workdir), {
            "DATABASE_URL": f"sqlite:///{workdir}/bench.db",
            "OPENAI_BASE_URL": upstream_url + "/v1",
            "SLUICE_DEMO_TOKENS_PER_SECOND": "2",  # streams stay open while measured
            "SLUICE_WORKER_CONNECTIONS": str(connections),
        }).start()
        try:
            yield server
        finally:
            server.stop()
            log = server.log_path.read_text(errors="replace")
            if "Traceback" in log:
                print(f"   !! {log.count('Traceback')} traceback(s) in the server's log; "
                      f"the first:\n{log[log.index('Traceback'):][:3000]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=300,
                        help="open SSE streams for memory")
    parser.add_argument("--socket-streams", type=int, default=100,
                        help="open sockets for memory, each following one answer")
    parser.add_argument("--streams-per-socket", type=int, default=32,
                        help="answers followed by one socket for memory (the server's cap: 32)")
    parser.add_argument("--latency-streams", type=int, default=20,
                        help="concurrent answers for latency, over each transport")
    args = parser.parse_args()

    upstream = QuietHTTPServer(("127.0.0.1", 0), StampingUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    upstream_url = f"http://127.0.0.1:{upstream.server_address[1]}"
    connections = max(args.streams, args.socket_streams, args.latency_streams) + 100
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before the run")
    try:
        print("== worker RSS per open stream (demo answers at 2 tokens/s; "
              "a fresh one-worker server for each line) ==")
        for measure, count in ((sse_memory, args.streams),
                               (socket_memory, args.socket_streams),
                               (one_socket_memory, args.streams_per_socket)):
            with serving(upstream_url, connections) as server:
                measure(server, count)
        print("== added latency per token ==")
        with serving(upstream_url, connections) as server:
            added_latency(server, upstream_url, args.latency_streams)
    finally:
        upstream.shutdown()


if __name__ == "__main__":
    main()
