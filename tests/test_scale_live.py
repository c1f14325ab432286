"""The streaming core under load, on a live gunicorn + gevent worker: hundreds of
streams through one worker on a handful of Redis connections, Redis restarting under
running streams, grouped checkpoints surviving a crash, and a bounded log memory."""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from urllib3.exceptions import ProtocolError

from .hostile import assert_refused
from .services import RedisServer
from .sse_client import read_stream, text_of
from .test_durability_live import wait_for, worker_pid

REDIS_ONLY = pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)
# With Redis, a process's in-memory copies are bounded the same way, but Redis keeps
# the full log for its TTL: what is dropped from memory still replays event by event.
MEMORY_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def stream_one(server, content: str, after_start=None) -> dict:
    """Send one message on a thread of its own and read its whole stream."""
    thread_id = server.new_thread()
    response = requests.post(f"{server.url}/api/v1/threads/{thread_id}/messages/stream",
                             json={"content": content}, stream=True, timeout=120)
    assert response.status_code == 200, response.text
    events = []
    for event in read_stream(response):
        events.append(event)
        if after_start is not None and len(events) == 3:
            after_start()
    return {"thread_id": thread_id, "events": events}


def assert_whole(server, result: dict) -> None:
    """Gapless ids from 1, one `done` last, complete, and the stored text is the deltas."""
    events = result["events"]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "done" and events[-1].data["status"] == "complete", events[-1]
    stored = server.messages(result["thread_id"])[-1]
    assert stored["status"] == "complete" and stored["content"] == text_of(events)


@REDIS_ONLY
def test_300_streams_through_one_worker_on_a_handful_of_redis_connections(
        start_server, redis_server):
    server = start_server(SLUICE_DEMO_TOKENS_PER_SECOND="150")
    name = f"sluice-{worker_pid(server)}"
    most, done = [0], threading.Event()

    def count_connections() -> None:
        while not done.is_set():
            most[0] = max(most[0], redis_server.clients(name))
            time.sleep(0.05)

    counter = threading.Thread(target=count_connections)
    counter.start()
    try:
        with ThreadPoolExecutor(max_workers=300) as pool:
            results = list(pool.map(lambda n: stream_one(server, f"stream {n}"), range(300)))
    finally:
        done.set()
        counter.join()
    for result in results:
        assert_whole(server, result)
    assert 0 < most[0] <= 10, f"{most[0]} Redis connections for one worker"


@pytest.fixture
def own_redis():
    server = RedisServer()
    yield server
    server.stop()


@REDIS_ONLY
def test_redis_restarting_under_running_streams(start_server, own_redis):
    server = start_server(REDIS_URL=own_redis.url, SLUICE_DEMO_TOKENS_PER_SECOND="25")
    offset = server.log_size()
    thread_id = server.new_thread()
    restarted = threading.Event()

    def restart_while_down_check() -> None:
        # Runs once the streams below are under way: Redis goes away for 2 s.
        threading.Thread(target=lambda: (own_redis.restart(2.0), restarted.set())).start()

    with ThreadPoolExecutor(max_workers=4) as pool:
        running = [pool.submit(stream_one, server, f"long answer {n}",
                               restart_while_down_check if n == 0 else None)
                   for n in range(3)]
        time.sleep(1.0)
        assert not restarted.is_set()
        # While Redis is down a new message fails at once, cleanly, storing nothing.
        before = server.messages(thread_id)
        started = time.monotonic()
        refused = server.api("POST", f"/api/v1/threads/{thread_id}/messages/stream",
                             json={"content": "now?"})
        assert time.monotonic() - started < 5
        assert assert_refused(refused, {503}) == "unavailable"
        assert server.messages(thread_id) == before
        results = [future.result(timeout=120) for future in running]
    assert restarted.is_set()
    for result in results:  # the running answers went on and ended whole
        assert_whole(server, result)
    after = server.api("POST", f"/api/v1/threads/{thread_id}/messages", json={"content": "hi"})
    assert after.status_code == 200  # and new ones work again
    server.assert_log_clean(since=offset)


def test_grouped_checkpoints_lose_at_most_an_interval_per_stream_in_a_crash(start_server):
    # Slow enough that every answer is still streaming when the worker dies.
    server = start_server(SLUICE_LEASE_SECONDS="2", SLUICE_DEMO_TOKENS_PER_SECOND="15")
    threads = [server.new_thread() for _ in range(100)]
    received: dict[str, list[tuple[float, str]]] = {t: [] for t in threads}
    stop = threading.Event()

    def follow(thread_id: str) -> None:
        response = requests.post(f"{server.url}/api/v1/threads/{thread_id}/messages/stream",
                                 json={"content": "crash"}, stream=True, timeout=60)
        try:
            for event in read_stream(response):
                if event.event == "delta":
                    received[thread_id].append((time.monotonic(), event.data["content"]))
                if stop.is_set():
                    return
        except (requests.RequestException, ProtocolError):
            return  # the worker died under us

    readers = [threading.Thread(target=follow, args=(t,)) for t in threads]
    for reader in readers:
        reader.start()
    # Every answer has text on screen, then more than an interval passes: what a
    # reader saw by then must have been checkpointed. (On a busy machine the last of
    # the hundred can start streaming seconds after the first.)
    wait_for(lambda: all(received.values()), what="every answer to stream text")
    time.sleep(2)
    killed_at = time.monotonic()
    os.kill(worker_pid(server), signal.SIGKILL)
    stop.set()
    for reader in readers:
        reader.join(30)
    for thread_id in threads:
        stored = wait_for(lambda: next((m for m in server.messages(thread_id)
                                        if m["role"] == "assistant"
                                        and m["status"] == "interrupted"), None),
                          what="the answer to be interrupted")
        seen = "".join(text for _, text in received[thread_id])
        kept_by = "".join(text for at, text in received[thread_id] if at < killed_at - 1.5)
        assert seen.startswith(stored["content"])
        assert stored["content"].startswith(kept_by) and kept_by


@MEMORY_ONLY
def test_finished_logs_stay_within_their_byte_bound(start_server):
    server = start_server(SLUICE_EVENT_LOG_MAX_BYTES="60000", SLUICE_DEMO_TOKENS_PER_SECOND="5000")
    results = [stream_one(server, f"burst {n}") for n in range(30)]
    size = sum(len(e.data["content"]) for e in results[-1]["events"] if e.event == "delta")
    assert size > 500  # each answer's frames are a good part of the bound
    for result in results:
        assert_whole(server, result)
    # The oldest streams were dropped from memory and replay from storage (one delta);
    # the newest still replay event by event; the same text either way.
    replays = []
    for result in (results[0], results[-1]):
        stream_id = result["events"][0].data["stream_id"]
        response = requests.get(f"{server.url}/api/v1/streams/{stream_id}/events",
                                stream=True, timeout=30)
        replays.append(list(read_stream(response)))
        assert text_of(replays[-1]) == text_of(result["events"])
    assert [e.event for e in replays[0]] == ["start", "delta", "done"]
    assert len(replays[1]) == len(results[-1]["events"])
