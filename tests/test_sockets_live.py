"""The WebSocket transport (Socket.IO) on live gunicorn servers, driven by the official
python-socketio client as a user's program would: answers, cancels, resumes on
another server, jobs, isolation between users, bad input, a socket that stops
reading, and nginx in front with the shipped config."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
import requests
import websocket

from .accounts import create_account
from .prometheus_text import read_metrics
from .services import NginxServer
from .socket_client import SocketUser, seqs, text_of
from .sse_client import read_stream
from .test_durability_live import (FIREHOSE_CHARACTERS, script_firehose,  # noqa: F401
                                  two_instances, wait_for, worker_pid)
from .webhook_receiver import receiver as _receiver

shared_backend = pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)
hook = pytest.fixture(_receiver)


def assert_whole(events: list[dict], stream_id: str) -> None:
    """One stream's events, as a client must see them: 1, 2, 3… from `start` to `done`."""
    assert seqs(events) == list(range(1, len(events) + 1))
    assert (events[0]["type"], events[-1]["type"]) == ("start", "done")
    assert all(e["stream_id"] == stream_id for e in events)


def test_an_answer_streams_over_the_socket_exactly_as_over_sse(live_server):
    thread_id = live_server.new_thread()
    with SocketUser(live_server.url).connect() as user:
        ack = user.call("send_message", {"thread_id": thread_id, "content": "hello socket"})
        events = user.stream(ack["stream_id"])
    assert_whole(events, ack["stream_id"])
    assert [e["type"] for e in events[:2]] == ["start", "message_saved"]
    stored = live_server.messages(thread_id)[-1]
    assert (stored["status"], stored["content"]) == ("complete", text_of(events))
    assert events[-1]["message_id"] == stored["id"]
    over_sse = [{**e.data, "stream_id": ack["stream_id"]}
                for e in read_stream(live_server.resume(ack["stream_id"], 0))]
    assert events == over_sse  # same types, seqs and payloads


def test_an_operation_runs_over_the_socket(live_server):
    with SocketUser(live_server.url).connect() as user:
        ack = user.call("run_operation", {"name": "summarize",
                                          "input": {"text": "Rivers run to the sea. " * 5}})
        events = user.stream(ack["stream_id"])
    assert_whole(events, ack["stream_id"])
    done = events[-1]
    assert done["status"] == "complete"
    run = live_server.api("GET", f"/api/v1/operations/runs/{done['run_id']}").json()["run"]
    assert run["result"] == done["result"]


def test_cancel_from_the_socket_stops_the_answer_mid_way(live_server):
    thread_id = live_server.new_thread()
    with SocketUser(live_server.url).connect() as user:
        ack = user.call("send_message", {"thread_id": thread_id, "content": "a long one"})
        stream_id = ack["stream_id"]
        user.wait(lambda: sum(e["type"] == "delta" for e in user.streams[stream_id]) >= 3)
        assert user.call("cancel", {"stream_id": stream_id}) == {"stream_id": stream_id,
                                                                 "status": "cancelling"}
        events = user.stream(stream_id, timeout=5)
    assert_whole(events, stream_id)
    assert (events[-1]["status"], events[-1]["finish_reason"]) == ("cancelled", "cancelled")
    stored = live_server.messages(thread_id)[-1]
    assert (stored["status"], stored["content"]) == ("cancelled", text_of(events))
    assert len(stored["content"]) < 200  # stopped well before the demo's whole answer


@shared_backend
def test_a_socket_dropped_mid_answer_resumes_on_another_server_without_a_gap(two_instances):
    first, second = two_instances
    thread_id = first.new_thread()
    user = SocketUser(first.url).connect()
    ack = user.call("send_message", {"thread_id": thread_id, "content": "resume me elsewhere"})
    stream_id = ack["stream_id"]
    user.wait(lambda: sum(e["type"] == "delta" for e in user.streams[stream_id]) >= 5)
    user.client.disconnect()  # the page's network drops mid-answer
    before = list(user.streams[stream_id])
    last = before[-1]["seq"]
    with SocketUser(second.url).connect() as again:
        assert again.call("subscribe", {"stream_id": stream_id, "after": last}) == {
            "stream_id": stream_id}
        after = again.stream(stream_id)
    assert seqs(after) == list(range(last + 1, last + 1 + len(after)))
    assert_whole(before + after, stream_id)
    stored = second.messages(thread_id)[-1]
    assert (stored["status"], stored["content"]) == ("complete", text_of(before + after))
    # Once it is all read, subscribing says so instead of sending anything.
    with SocketUser(second.url).connect() as late:
        assert late.call("subscribe", {"stream_id": stream_id, "after": after[-1]["seq"]}) == {
            "stream_id": stream_id, "ended": True}


def test_a_jobs_progress_is_followed_to_its_end(start_server, hook):
    server = start_server(SLUICE_WEBHOOK_ALLOW_PRIVATE="on")
    hook.secret = server.api("POST", "/api/v1/webhooks/secret").json()["secret"]
    thread_id = server.new_thread()
    posted = server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                        json={"content": "as a job", "callback_url": hook.url}).json()["job"]
    with SocketUser(server.url).connect() as user:
        # One made over HTTP, followed from the socket; one made on the socket itself.
        assert user.call("subscribe", {"job_id": posted["id"], "after": 0}) == {
            "job_id": posted["id"]}
        made = user.call("run_operation", {"name": "summarize", "callback_url": hook.url,
                                           "input": {"text": "A job over the socket."}})
        for job_id in (posted["id"], made["job_id"]):
            progress = user.job(job_id)
            *events, end = progress
            assert seqs(events) == list(range(1, len(events) + 1))
            assert all(e["job_id"] == job_id for e in progress)
            stages = [e["stage"] for e in events if e["type"] == "status"]
            assert stages[:2] == ["queued", "connecting"] and "delivering" in stages
            assert events[-1]["type"] == "done"
            assert end["job"]["id"] == job_id and end["job"]["status"] == "complete"
    assert text_of(user.jobs[posted["id"]]) == server.messages(thread_id)[-1]["content"]


def test_one_users_socket_never_sees_or_touches_anothers_streams(start_server, hook):
    server = start_server(SLUICE_AUTH="on", SLUICE_WEBHOOK_ALLOW_PRIVATE="on")
    alice, bob = create_account(server, "alice"), create_account(server, "bob")
    hook.secret = alice.api("POST", "/api/v1/webhooks/secret").json()["secret"]
    thread_id = alice.api("POST", "/api/v1/threads", json={}).json()["thread"]["id"]
    browser, _ = bob.browser()  # Bob uses the page: his socket carries his cookie
    with SocketUser(server.url).connect(auth={"api_key": alice.key}) as a, \
            SocketUser(server.url, http_session=browser).connect() as b:
        ack = a.call("send_message", {"thread_id": thread_id, "content": "only mine"})
        stream_id = ack["stream_id"]
        refusals = [b.call("subscribe", {"stream_id": stream_id, "after": 0}),
                    b.call("cancel", {"stream_id": stream_id}),
                    b.call("send_message", {"thread_id": thread_id, "content": "hi"})]
        events = a.stream(stream_id)
        posted = alice.api("POST", "/api/v1/operations/summarize",
                           json={"input": {"text": "hers"}, "callback_url": hook.url}).json()
        refusals.append(b.call("subscribe", {"job_id": posted["job"]["id"], "after": 0}))
        a.call("subscribe", {"job_id": posted["job"]["id"], "after": 0})
        a.job(posted["job"]["id"])
        time.sleep(0.5)  # anything wrongly sent to Bob has had time to arrive
        assert b.everything() == []
    assert [r["error"]["code"] for r in refusals] == [
        "stream_not_found", "stream_not_found", "thread_not_found", "job_not_found"]
    assert all(r["error"]["status"] == 404 for r in refusals)
    assert events[-1]["status"] == "complete"  # Bob's cancel changed nothing


def test_a_socket_is_refused_without_credentials_or_from_another_site(start_server):
    server = start_server(SLUICE_AUTH="on")
    carol = create_account(server, "carol")
    browser, _ = carol.browser()
    attempts = {
        "no credentials": SocketUser(server.url),
        "a wrong key": SocketUser(server.url),
        "another site's page": SocketUser(server.url, http_session=browser,
                                          websocket_extra_options={"origin": "http://evil.test"}),
    }
    options = {"a wrong key": {"auth": {"api_key": "sk-sluice-wrong"}}}
    for name, user in attempts.items():
        with pytest.raises(Exception):
            user.connect(**options.get(name, {}))
        assert user.refusal is not None, name
    codes = {name: user.refusal["data"]["code"] for name, user in attempts.items()}
    assert codes == {"no credentials": "unauthorized", "a wrong key": "unauthorized",
                     "another site's page": "forbidden_origin"}
    # The same cookie from the page's own origin is let in.
    with SocketUser(server.url, http_session=browser).connect() as own:
        assert own.call("subscribe", {"stream_id": "str_none", "after": 0})["error"]["code"] == \
            "stream_not_found"


def test_a_socket_follows_at_most_32_streams_at_once(start_server):
    server = start_server(SLUICE_DEMO_TOKENS_PER_SECOND="5")  # all still streaming at the end
    threads = [server.new_thread() for _ in range(33)]
    with SocketUser(server.url).connect() as user:
        acks = [user.call("send_message", {"thread_id": t, "content": "one of many"})
                for t in threads]
        for ack in acks[:32]:
            user.call("cancel", ack)
            assert user.stream(ack["stream_id"])[-1]["status"] == "cancelled"
    assert acks[32]["error"]["code"] == "too_many_subscriptions"
    assert server.messages(threads[32]) == []  # refused before anything was stored


def test_socket_requests_count_against_the_same_rate_limit_as_http(start_server):
    server = start_server(SLUICE_USER_RPM="4")
    assert server.api("GET", "/api/v1/threads").status_code == 200  # one by HTTP
    with SocketUser(server.url).connect() as user:
        answers = [user.call("cancel", {"stream_id": "str_none"}) for _ in range(4)]
    assert [a["error"]["status"] for a in answers] == [404, 404, 404, 429]
    assert answers[-1]["error"]["code"] == "rate_limited"
    assert server.api("GET", "/api/v1/threads").status_code == 429  # and HTTP sees them


@pytest.mark.parametrize("query", ["?EIO=4&transport=polling", "", "?EIO=4&transport=websocket"])
def test_anything_but_a_websocket_handshake_is_told_to_use_one(live_server, query):
    """Socket.IO clients start with long-polling unless told otherwise; what they get
    says how to connect (the last: the right query, but a plain GET, not an upgrade)."""
    response = requests.get(f"{live_server.url}/socket.io/{query}", timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "websocket_required"


@pytest.mark.parametrize(("event", "data", "status", "code"), [
    ("send_message", ["not", "an", "object"], 400, "invalid_json"),
    ("send_message", {"content": "no thread"}, 400, "invalid_field"),
    ("send_message", {"thread_id": "../etc", "content": "x"}, 404, "thread_not_found"),
    ("send_message", {"thread_id": "thr_missing", "content": "x"}, 404, "thread_not_found"),
    ("send_message", {"thread_id": 7, "content": "x"}, 400, "invalid_field"),
    ("send_message", {"thread_id": "thr_x", "content": "nul \u0000"}, 400, "invalid_text"),
    ("run_operation", {"name": "no-such-op", "input": {}}, 404, "operation_not_found"),
    ("subscribe", {"stream_id": "str_x", "after": -1}, 400, "invalid_event_id"),
    ("subscribe", {"stream_id": "str_x", "after": True}, 400, "invalid_event_id"),
    ("subscribe", {"stream_id": "str_x", "after": float("nan")}, 400, "invalid_number"),
    ("subscribe", {"stream_id": "str_x", "job_id": "job_x"}, 400, "invalid_field"),
    ("subscribe", {"after": 0}, 400, "invalid_field"),
    ("cancel", {}, 400, "invalid_field"),
    ("cancel", None, 400, "invalid_json"),
    ("rm_rf", {}, 404, "unknown_event"),
])
def test_bad_requests_get_a_clear_error_and_change_nothing(live_server, event, data, status,
                                                           code):
    threads_before = live_server.api("GET", "/api/v1/threads").json()
    with SocketUser(live_server.url).connect() as user:
        answer = user.call(event, data)
        assert (answer["error"]["status"], answer["error"]["code"]) == (status, code), answer
        # The socket is still usable after a refusal.
        assert "error" in user.call("cancel", {"stream_id": "str_none"})
    assert live_server.api("GET", "/api/v1/threads").json() == threads_before


def test_open_sockets_and_their_requests_are_counted(live_server):
    def scrape():
        return read_metrics(live_server.api("GET", "/metrics").text)

    before = scrape()
    users = [SocketUser(live_server.url).connect() for _ in range(2)]
    assert users[0].call("cancel", {"stream_id": "str_none"})["error"]["status"] == 404
    during = scrape()
    for user in users:
        user.client.disconnect()
    assert during.value("sluice_open_sockets") == before.value("sluice_open_sockets") + 2
    assert during.value("sluice_socket_requests_total", event="cancel", status="404") == \
        before.value("sluice_socket_requests_total", event="cancel", status="404") + 1
    wait_for(lambda: scrape().value("sluice_open_sockets") == before.value("sluice_open_sockets"),
             what="the closed sockets to be counted out")


def test_a_stopping_worker_ends_its_answers_then_closes_its_sockets(start_server):
    """A page keeps its socket open between answers: on SIGTERM the worker must not wait
    for it until gunicorn's deadline (here 60 s), only for the answers it is producing."""
    server = start_server(SLUICE_GRACEFUL_TIMEOUT="60")
    thread_id = server.new_thread()
    closed = {}
    users = [SocketUser(server.url).connect() for _ in range(2)]  # one streams, one idles
    for name, user in zip(("streaming", "idle"), users):
        closed[name] = threading.Event()
        user.client.on("disconnect", lambda *_, done=closed[name]: done.set())
    ack = users[0].call("send_message", {"thread_id": thread_id, "content": "finish me"})
    users[0].wait(lambda: len(users[0].streams[ack["stream_id"]]) >= 3)
    os.kill(worker_pid(server), signal.SIGTERM)
    assert closed["streaming"].wait(30) and closed["idle"].wait(5)
    events = users[0].streams[ack["stream_id"]]
    assert_whole(events, ack["stream_id"])  # the answer ended first, whole
    assert events[-1]["status"] == "complete"
    assert server.messages(thread_id)[-1]["content"] == text_of(events)


def raw_socket(server, **options) -> websocket.WebSocket:
    """Socket.IO spoken by hand: a WebSocket connected to the namespace `/`."""
    raw = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=10,
        **options)
    assert raw.recv().startswith("0{")  # Engine.IO's open
    raw.send("40")
    assert raw.recv().startswith("40{")  # connected to the namespace
    return raw


@pytest.mark.parametrize("packet", [
    '421["send_message",' + "[" * 5000 + "]" * 5000 + "]",  # past Python's recursion limit
    "42not json",
    '421["send_message", {"thread_id": "thr_x", "content": NaN}',
])
def test_a_malformed_packet_closes_that_socket_cleanly(live_server, packet):
    offset = live_server.log_size()
    with SocketUser(live_server.url).connect() as bystander:
        raw = raw_socket(live_server)
        raw.send(packet)
        assert raw.recv() == "1"  # Engine.IO's close
        raw.close()
        # Another socket is not affected.
        assert "error" in bystander.call("cancel", {"stream_id": "str_none"})
    live_server.assert_log_clean(since=offset)


def test_a_socket_that_stops_reading_is_cut_and_the_answer_goes_on(start_server, fake_openai):
    server = start_server(SLUICE_SEND_TIMEOUT="2")
    script_firehose(fake_openai, "socket-firehose")
    thread_id = server.new_thread()
    # A WebSocket whose receive buffer is tiny.
    raw = raw_socket(server, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    request = ["send_message", {"thread_id": thread_id, "content": "flood me",
                                "model": "openai/socket-firehose"}]
    raw.send("421" + json.dumps(request))
    time.sleep(6)  # stop reading: the follower gives up after 2 s of a full queue
    received = []
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        while True:
            received.append(raw.recv())
    assert not any('"type": "done"' in frame for frame in received)  # dropped before the end
    stored = wait_for(lambda: (m := server.messages(thread_id)[-1])["status"] != "streaming"
                      and m, what="the answer to finish")
    assert stored["status"] == "complete"  # ...while the answer went on to the end
    assert len(stored["content"]) == FIREHOSE_CHARACTERS


@shared_backend
def test_through_nginx_with_two_workers_sockets_stream_and_resume(start_server):
    server = start_server(WEB_CONCURRENCY="2")
    proxy = NginxServer(server.port)
    try:
        threads = [server.new_thread() for _ in range(4)]
        users = [SocketUser(proxy.url).connect() for _ in threads]
        acks = [u.call("send_message", {"thread_id": t, "content": "through nginx"})
                for u, t in zip(users, threads)]
        for user, ack in zip(users, acks):
            user.wait(lambda u=user, a=ack: len(u.streams[a["stream_id"]]) >= 4)
            user.client.disconnect()
        for thread_id, user, ack in zip(threads, users, acks):
            stream_id = ack["stream_id"]
            before = list(user.streams[stream_id])
            with SocketUser(proxy.url).connect() as again:
                again.call("subscribe", {"stream_id": stream_id, "after": before[-1]["seq"]})
                after = again.stream(stream_id)
            assert_whole(before + after, stream_id)
            assert text_of(before + after) == server.messages(thread_id)[-1]["content"]
    finally:
        proxy.stop()
