"""The WebSocket (Socket.IO) side of bench/streams.py: answers followed over sockets
opened by the official python-socketio client, as a user's program opens them.

The client is threads (a reader and a writer per socket, and a new thread for every
message it receives), so the benchmark keeps its socket count moderate: what it
measures should be the server, not the client's scheduling.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import socketio

from tests.live_server import LiveServer
from tests.socket_client import SocketUser

CONNECTING_THREADS = 50  # sockets opened at once by the benchmark


def follow_answer(server: LiveServer, user: SocketUser) -> str:
    """Send a message on a new thread over `user`'s socket; return the answer's stream id
    once its first delta has arrived (so the answer is running, not just accepted)."""
    ack = user.call("send_message", {"thread_id": server.new_thread(),
                                     "content": "hold this stream open"})
    if "stream_id" not in ack:
        raise RuntimeError(f"send_message was refused: {ack}")
    stream_id = ack["stream_id"]
    events = user.streams[stream_id]
    user.wait(lambda: any(e["type"] == "delta" for e in events), what=f"{stream_id}'s first delta")
    return stream_id


def open_sockets(server: LiveServer, count: int) -> list[tuple[SocketUser, list[str]]]:
    """`count` sockets, each following one answer."""
    def one(_: int) -> tuple[SocketUser, list[str]]:
        user = SocketUser(server.url).connect()
        return user, [follow_answer(server, user)]

    with ThreadPoolExecutor(max_workers=min(count, CONNECTING_THREADS)) as pool:
        return list(pool.map(one, range(count)))


def open_one_socket(server: LiveServer, count: int) -> list[tuple[SocketUser, list[str]]]:
    """One socket following `count` answers (the server allows 32 on one socket)."""
    user = SocketUser(server.url).connect()
    with ThreadPoolExecutor(max_workers=min(count, CONNECTING_THREADS)) as pool:
        return [(user, list(pool.map(lambda _: follow_answer(server, user), range(count))))]


def close_sockets(server: LiveServer, held: list[tuple[SocketUser, list[str]]]) -> None:
    """Cancel the answers (a running answer would hold the server's shutdown for its
    graceful timeout) and close the sockets."""
    for user, stream_ids in held:
        for stream_id in stream_ids:
            server.api("POST", f"/api/v1/streams/{stream_id}/cancel")
        user.client.disconnect()


def token_latencies(server: LiveServer, thread_ids: list[str]) -> list[float]:
    """Per-token delay (ms) between the upstream writing a token and a socket client
    receiving it: one socket per thread, all answers at once. The receive time is taken
    when python-socketio calls the handler (in the thread it starts per message)."""
    def one(thread_id: str) -> list[float]:
        delays: list[float] = []
        done = threading.Event()
        client = socketio.Client(reconnection=False)

        def received(data: dict) -> None:
            if data["type"] == "delta":
                delays.append((time.time() - float(data["content"])) * 1000)
            elif data["type"] == "done":
                done.set()

        client.on("stream_event", received)
        client.connect(server.url, transports=["websocket"], wait_timeout=10)
        try:
            ack = client.call("send_message", {"thread_id": thread_id, "content": "stamp"},
                              timeout=30)
            if "stream_id" not in ack:
                raise RuntimeError(f"send_message was refused: {ack}")
            if not done.wait(60):
                raise RuntimeError(f"{ack['stream_id']} did not end within 60 s")
        finally:
            client.disconnect()
        return delays

    with ThreadPoolExecutor(max_workers=len(thread_ids)) as pool:
        return [d for delays in pool.map(one, thread_ids) for d in delays]
