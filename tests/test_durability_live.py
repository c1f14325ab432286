"""Streams that outlive their worker: several instances, crashes, shutdowns, proxies,
slow databases and clients that stop reading — on real gunicorn, Redis, PostgreSQL, nginx."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests

from services.providers.base import ChatMessage, ChatRequest
from services.providers.demo import demo_answer

from .fake_upstream import SILENT_UPSTREAMS, Reply, fixture, sse_events_of
from .live_server import free_port
from .services import NginxServer
from .sse_client import body_chunks, read_stream, text_of
from .test_streaming_live import cancel_while_connecting, cancel_while_silent

shared_backend = pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)


def worker_pid(server) -> int:
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def wait_for(condition, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# --- two instances sharing PostgreSQL and Redis --------------------------------------

@shared_backend
def test_a_stream_started_on_one_instance_resumes_on_another(start_server):
    first = start_server()
    second = start_server(database_url=first.env["DATABASE_URL"])
    thread_id = first.new_thread()
    response = first.open_stream(thread_id, "one stream, two servers")
    seen = []
    for event in read_stream(response):
        seen.append(event)
        if event.id == 25:
            break
    response.close()
    rest = list(read_stream(second.resume(seen[0].data["stream_id"], 25)))
    assert rest[0].id == 26 and rest[-1].event == "done"
    everything = seen + rest
    assert [e.id for e in everything] == list(range(1, len(everything) + 1))
    stored = second.messages(thread_id)[-1]
    assert stored == first.messages(thread_id)[-1]
    assert text_of(everything) == stored["content"] == demo_answer(
        ChatRequest("echo", (ChatMessage("user", "one stream, two servers"),)))


@pytest.fixture(scope="module")
def two_instances(start_server):
    """Two servers on one PostgreSQL and Redis, started once for the tests that only
    send requests to them (none stops or kills one)."""
    first = start_server()
    return first, start_server(database_url=first.env["DATABASE_URL"])


@shared_backend
def test_cancel_through_another_instance_cuts_the_producers_upstream(two_instances,
                                                                      fake_openai):
    first, second = two_instances
    body = fixture("openai/text_with_usage.sse")
    fake_openai.script("cross-cancel", Reply(split_at=sse_events_of(body)[:2], then_hang=60))
    thread_id = first.new_thread()
    events = read_stream(first.open_stream(thread_id, "hi", model="openai/cross-cancel"))
    seen = [next(events) for _ in range(3)]  # start, message_saved, first delta
    cancelled_at = time.monotonic()
    answer = second.api("POST", f"/api/v1/streams/{seen[0].data['stream_id']}/cancel")
    assert (answer.status_code, answer.json()["status"]) == (202, "cancelling")
    assert fake_openai.hung_up["cross-cancel"].wait(5)
    assert time.monotonic() - cancelled_at < 2  # "within a second", with room for a slow CI
    rest = list(events)
    assert rest[-1].data["status"] == "cancelled"
    assert second.messages(thread_id)[-1]["content"] == "Héllo"


@shared_backend
@pytest.mark.parametrize("phase", sorted(SILENT_UPSTREAMS))
def test_cancel_through_another_instance_cuts_an_upstream_that_has_not_started_its_answer(
        two_instances, fake_openai, phase):
    first, second = two_instances
    everything, took = cancel_while_silent(first, fake_openai, phase, cancel_through=second)
    assert [e.event for e in everything] == ["start", "message_saved", "status", "done"]
    assert took < 1  # relayed through Redis, not the read timeout


@shared_backend
def test_cancel_through_another_instance_cuts_an_upstream_that_is_still_connecting(
        two_instances):
    first, second = two_instances
    everything, took = cancel_while_connecting(first, cancel_through=second)
    assert [e.event for e in everything] == ["start", "message_saved", "status", "done"]
    assert took < 1  # relayed through Redis, not the 60 s connect timeout


@shared_backend
def test_status_and_tool_events_resume_gapless_on_another_instance(two_instances):
    """The demo model runs two tools; a client that breaks off after the first status
    picks up on the other server: the statuses and tool events are there, in order."""
    first, second = two_instances
    thread_id = first.new_thread()
    response = first.open_stream(thread_id, "What time is it, and what is 6*7?")
    events = read_stream(response)
    seen = [next(events) for _ in range(3)]  # start, message_saved, status (connecting)
    response.close()
    stream_id = seen[0].data["stream_id"]
    everything = seen + list(read_stream(second.resume(stream_id, seen[-1].id)))
    assert [e.id for e in everything] == list(range(1, len(everything) + 1))
    stages = [e.data["stage"] for e in everything if e.event == "status"]
    assert stages == ["connecting", "tool_running", "step", "connecting"]
    results = {e.data["name"]: e.data for e in everything if e.event == "tool_result"}
    assert results["calculator"]["result"] == "42" and "current_time" in results
    assert text_of(everything) == second.messages(thread_id)[1]["content"]
    replay = list(read_stream(second.resume(stream_id, 0)))
    assert [(e.id, e.event, e.data) for e in replay] == [(e.id, e.event, e.data)
                                                        for e in everything]


# --- crashes -------------------------------------------------------------------------

def test_a_killed_worker_leaves_an_interrupted_message_with_its_checkpointed_text(
        start_server):
    server = start_server(SLUICE_LEASE_SECONDS="2", SLUICE_DEMO_TOKENS_PER_SECOND="40")
    thread_id = server.new_thread()
    received, text = [], ""
    for event in read_stream(server.open_stream(thread_id, "crash me")):
        received.append((time.monotonic(), event))
        if event.event == "delta":
            text += event.data["content"]
        if event.event == "delta" and event.id > 90:  # a little over two seconds in
            break
    killed_at = time.monotonic()
    os.kill(worker_pid(server), signal.SIGKILL)  # gunicorn's master starts a new worker

    stored = wait_for(lambda: next((m for m in server.messages(thread_id)
                                    if m["status"] == "interrupted"), None),
                      what="the message to be interrupted")
    assert stored["error"]["code"] == "interrupted"
    assert text.startswith(stored["content"])
    # At most about a second of text is lost: all that arrived 1.5 s before the kill is kept.
    kept_by = "".join(e.data["content"] for at, e in received
                      if e.event == "delta" and at < killed_at - 1.5)
    assert stored["content"].startswith(kept_by) and len(kept_by) > 0

    last_id = received[-1][1].id
    resumed = list(read_stream(server.resume(received[0][1].data["stream_id"], last_id)))
    assert [e.event for e in resumed[-2:]] == ["error", "done"]
    assert resumed[-1].data["status"] == "interrupted"
    assert resumed[-2].data["code"] == "interrupted"


def test_sigterm_lets_short_answers_finish_and_stores_the_rest_as_interrupted(
        start_server, fake_openai):
    server = start_server(SLUICE_GRACEFUL_TIMEOUT="6", SLUICE_DEMO_TOKENS_PER_SECOND="10")
    events = sse_events_of(fixture("openai/text_with_usage.sse"))
    fake_openai.script("finishes-in-time", Reply(split_at=events, delay=0.3))
    short_thread, long_thread = server.new_thread(), server.new_thread()
    short = read_stream(server.open_stream(short_thread, "hi", model="openai/finishes-in-time"))
    long = read_stream(server.open_stream(long_thread, "this takes sixteen seconds"))
    long_seen = [next(long) for _ in range(4)]
    next(short)
    server.process.send_signal(signal.SIGTERM)
    short_rest, long_rest = list(short), list(long)
    assert short_rest[-1].data["status"] == "complete"
    assert [e.event for e in long_rest[-2:]] == ["error", "done"]
    assert long_rest[-1].data["status"] == "interrupted"
    server.process.wait(30)

    restarted = start_server(database_url=server.env["DATABASE_URL"])
    assert restarted.messages(short_thread)[-1]["content"] == "Héllo, 世界 👋🏽 — done."
    stored = restarted.messages(long_thread)[-1]
    assert stored["status"] == "interrupted"
    assert stored["content"] == text_of(long_seen + long_rest)  # every word sent is kept


# --- PostgreSQL does not stall the worker -------------------------------------------

@shared_backend
def test_a_query_waiting_on_postgres_does_not_stall_other_streams(start_server):
    server = start_server(SLUICE_DEMO_TOKENS_PER_SECOND="40")
    thread_id = server.new_thread()
    events = read_stream(server.open_stream(thread_id, "keep flowing"))
    next(events)
    dsn = server.env["DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn) as blocker:
        blocker.execute("LOCK TABLE threads IN ACCESS EXCLUSIVE MODE")
        listing: dict = {}
        waiting = threading.Thread(target=lambda: listing.update(
            response=server.api("GET", "/api/v1/threads")))
        waiting.start()
        time.sleep(0.3)
        started = time.monotonic()
        deltas = 0
        while time.monotonic() - started < 1.5:
            deltas += next(events).event == "delta"
        assert "response" not in listing  # the listing is still waiting for its lock
        assert deltas >= 30  # the stream went on at its pace meanwhile
        blocker.rollback()
    waiting.join(10)
    assert listing["response"].status_code == 200
    list(events)


# --- nginx in front ------------------------------------------------------------------

@pytest.fixture
def nginx(live_server):
    server = NginxServer(live_server.port)
    yield server
    server.stop()


def test_through_nginx_the_first_delta_arrives_while_the_upstream_is_still_sending(
        live_server, nginx, fake_openai):
    events = sse_events_of(fixture("openai/text_with_usage.sse"))
    fake_openai.script("through-nginx", Reply(split_at=events, delay=0.5))
    thread_id = live_server.new_thread()
    response = requests.post(f"{nginx.url}/api/v1/threads/{thread_id}/messages/stream",
                             json={"content": "hi", "model": "openai/through-nginx"},
                             stream=True, timeout=30)
    assert response.headers["Content-Type"] == "text/event-stream"
    stream = read_stream(response)
    first_delta = next(e for e in stream if e.event == "delta")
    assert first_delta.data["content"] == "Héllo"
    assert not fake_openai.finished["through-nginx"].is_set()  # nothing held it back
    rest = list(stream)
    assert rest[-1].data["status"] == "complete"
    assert "".join([first_delta.data["content"]] + [e.data["content"] for e in rest
                                                    if e.event == "delta"]) == \
        "Héllo, 世界 👋🏽 — done."


@pytest.mark.parametrize("request_kwargs,status", [
    ({"method": "GET", "path": "/" + "a" * 20_000}, 414),
    ({"method": "GET", "path": "/", "headers": {"X-Big": "b" * 20_000}}, 400),
    ({"method": "POST", "path": "/api/v1/threads", "data": b"{" * (3 * 1024 * 1024),
      "headers": {"Content-Type": "application/json"}}, 413),
])
def test_through_nginx_its_own_errors_are_json_too(nginx, request_kwargs, status):
    kwargs = dict(request_kwargs)
    response = requests.request(kwargs.pop("method"), nginx.url + kwargs.pop("path"),
                                timeout=30, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"]


def test_through_nginx_a_sluice_that_is_down_is_a_json_503(live_server):
    proxy = NginxServer(free_port())  # nothing listens there
    try:
        response = requests.get(proxy.url + "/api/v1/threads", timeout=30)
    finally:
        proxy.stop()
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"


def test_through_nginx_a_sixty_second_silence_is_survived_thanks_to_pings(
        start_server, fake_openai):
    server = start_server(SLUICE_PING_SECONDS="15", SLUICE_READ_TIMEOUT="120",
                          SLUICE_FIRST_TOKEN_TIMEOUT="120")
    proxy = NginxServer(server.port)
    try:
        events = sse_events_of(fixture("openai/text_with_usage.sse"))
        fake_openai.script("long-silence", Reply(split_at=[b"".join(events[:2]),
                                                           b"".join(events[2:])], delay=61))
        thread_id = server.new_thread()
        response = requests.post(f"{proxy.url}/api/v1/threads/{thread_id}/messages/stream",
                                 json={"content": "hi", "model": "openai/long-silence"},
                                 stream=True, timeout=90)
        raw = b"".join(body_chunks(response))
    finally:
        proxy.stop()
    assert raw.count(b": ping\n\n") >= 3  # 61 s of silence, a ping every 15 s
    assert raw.rstrip().endswith(b"}") and b'"status": "complete"' in raw
    assert server.messages(thread_id)[-1]["content"] == "Héllo, 世界 👋🏽 — done."


# --- a client that stops reading -----------------------------------------------------

FIREHOSE_CHARACTERS = 12_000 * 2000  # 24 MB of answer: more than any socket buffer holds


def script_firehose(fake_openai, model: str) -> None:
    """An OpenAI-style answer of FIREHOSE_CHARACTERS, sent as fast as it can be read."""
    chunk = ('data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
             % ("x" * 2000)).encode()
    body = chunk * (FIREHOSE_CHARACTERS // 2000) \
        + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' \
        + b"data: [DONE]\n\n"
    fake_openai.script(model, Reply(body, chunk_size=1 << 20))


def test_a_client_that_stops_reading_is_dropped_and_the_answer_goes_on(start_server,
                                                                       fake_openai):
    server = start_server(SLUICE_SEND_TIMEOUT="2")
    script_firehose(fake_openai, "firehose")
    thread_id = server.new_thread()
    request = (f"POST /api/v1/threads/{thread_id}/messages/stream HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nContent-Type: application/json\r\n")
    payload = b'{"content": "flood me", "model": "openai/firehose"}'
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", server.port))
        client.sendall(request.encode() + b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(6)  # stop reading: the server's write times out after 2 s
        client.settimeout(10)
        received = b""
        while data := client.recv(1 << 20):
            received += data
    assert b"event: done" not in received  # dropped before the end...
    stored = wait_for(lambda: (m := server.messages(thread_id)[-1])["status"] != "streaming"
                      and m, what="the answer to finish")
    assert stored["status"] == "complete"  # ...while the answer went on to the end
    assert len(stored["content"]) == FIREHOSE_CHARACTERS
