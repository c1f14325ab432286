"""End to end through a real gunicorn + gevent server, as users run Sluice."""
from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from services.providers.base import ChatMessage, ChatRequest
from services.providers.demo import demo_answer

from .fake_upstream import SILENT_UPSTREAMS, Reply, fixture
from .sse_client import Received, read_stream, text_of

_names = (f"live-{n}" for n in itertools.count())


def full_demo_answer(content: str) -> str:
    return demo_answer(ChatRequest("echo", (ChatMessage("user", content),)))


def read_until(events, stop) -> list[Received]:
    seen = []
    for event in events:
        seen.append(event)
        if stop(event):
            break
    return seen


def assert_well_formed(events: list[Received]) -> None:
    assert [e.id for e in events] == list(range(1, len(events) + 1))  # gapless from 1
    assert [e.event for e in events].count("done") == 1
    assert events[-1].event == "done"


def test_the_first_delta_arrives_while_the_answer_is_still_being_written(live_server):
    thread_id = live_server.new_thread()
    response = live_server.open_stream(thread_id, "Is this really streaming?")
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    events = read_stream(response)
    before = read_until(events, lambda e: e.event == "delta")
    # The answer is not finished when its first piece reaches the client.
    assert live_server.messages(thread_id)[-1]["status"] == "streaming"
    rest = list(events)
    everything = before + rest
    assert_well_formed(everything)
    deltas = [e for e in everything if e.event == "delta"]
    assert len(deltas) > 100
    stored = live_server.messages(thread_id)[-1]
    assert stored["status"] == "complete"
    assert stored["content"] == text_of(everything) == full_demo_answer("Is this really streaming?")
    done = everything[-1].data
    assert done["status"] == "complete" and done["finish_reason"] == "stop"
    assert done["message_id"] == stored["id"]
    assert done["usage"] == stored["usage"] and done["usage"]["output_tokens"] == len(deltas)


def test_stored_content_follows_the_stream_while_it_streams(live_server):
    thread_id = live_server.new_thread()
    events = read_stream(live_server.open_stream(thread_id, "checkpoints"))
    seen = read_until(events, lambda e: e.event == "delta" and e.data["seq"] > 100)
    stored = live_server.messages(thread_id)[-1]
    assert stored["status"] == "streaming"
    # Checkpointed at least every second: at 80 tokens/s, most of what was sent is stored.
    assert text_of(seen).startswith(stored["content"])
    assert len(stored["content"]) > 0
    list(events)


@pytest.mark.parametrize("how", ["header", "query"])
def test_resume_from_the_middle_continues_exactly(live_server, how):
    thread_id = live_server.new_thread()
    response = live_server.open_stream(thread_id, "resume me")
    first = read_until(read_stream(response), lambda e: e.id == 20)
    response.close()
    stream_id = first[0].data["stream_id"]
    if how == "header":
        resumed = live_server.resume(stream_id, 20)
    else:
        resumed = requests.get(f"{live_server.url}/api/v1/streams/{stream_id}/events?after=20",
                               stream=True, timeout=30)
    rest = list(read_stream(resumed))
    assert rest[0].id == 21
    assert_well_formed(first + rest)
    stored = live_server.messages(thread_id)[-1]
    assert text_of(first + rest) == stored["content"] == full_demo_answer("resume me")


def test_resuming_a_running_stream_from_an_id_it_has_not_reached_sends_it_all(live_server):
    """An id past a running stream's last event is not this stream's numbering (one
    from a replay, or from another stream): the client gets the whole stream from its
    `start`, to the `done`, instead of pings and then a close with no `done`."""
    thread_id = live_server.new_thread()
    response = live_server.open_stream(thread_id, "far ahead")
    first = read_until(read_stream(response), lambda e: e.id == 5)
    response.close()
    resumed = list(read_stream(live_server.resume(first[0].data["stream_id"], 9999)))
    assert [e.id for e in resumed] == list(range(1, len(resumed) + 1))
    assert resumed[0].event == "start" and resumed[-1].event == "done"
    assert_well_formed(resumed)
    assert text_of(resumed) == live_server.messages(thread_id)[-1]["content"]


def test_a_finished_stream_replays_in_full_and_ends(live_server):
    thread_id = live_server.new_thread()
    original = list(read_stream(live_server.open_stream(thread_id, "replay")))
    stream_id = original[0].data["stream_id"]
    replayed = list(read_stream(live_server.resume(stream_id, 0)))
    assert [(e.id, e.event, e.data) for e in replayed] == [
        (e.id, e.event, e.data) for e in original]


def test_cancel_keeps_the_partial_answer(live_server):
    thread_id = live_server.new_thread()
    events = read_stream(live_server.open_stream(thread_id, "stop me half-way"))
    seen = read_until(events, lambda e: e.event == "delta" and e.id >= 12)
    stream_id = seen[0].data["stream_id"]
    cancel = live_server.api("POST", f"/api/v1/streams/{stream_id}/cancel")
    assert (cancel.status_code, cancel.json()["status"]) == (202, "cancelling")
    everything = seen + list(events)
    assert_well_formed(everything)
    done = everything[-1].data
    assert (done["status"], done["finish_reason"]) == ("cancelled", "cancelled")
    stored = live_server.messages(thread_id)[-1]
    assert stored["status"] == "cancelled"
    assert stored["content"] == text_of(everything)
    assert 0 < len(stored["content"]) < len(full_demo_answer("stop me half-way"))
    # Cancelling again, once it has ended, is accepted and changes nothing.
    again = live_server.api("POST", f"/api/v1/streams/{stream_id}/cancel")
    assert (again.status_code, again.json()["status"]) == (202, "cancelled")
    assert live_server.messages(thread_id)[-1] == stored


def test_cancel_closes_the_upstream_connection(live_server, fake_openai):
    model = next(_names)
    body = fixture("openai/text_with_usage.sse")
    first_events = body[:body.index(b"\n\n", body.index(b"\n\n") + 2) + 2]
    fake_openai.script(model, Reply(first_events, then_hang=60))  # then silence
    thread_id = live_server.new_thread()
    events = read_stream(live_server.open_stream(thread_id, "hi", model=f"openai/{model}"))
    seen = read_until(events, lambda e: e.event == "delta")
    cancel = live_server.api("POST", f"/api/v1/streams/{seen[0].data['stream_id']}/cancel")
    assert cancel.status_code == 202
    everything = seen + list(events)
    assert everything[-1].data["status"] == "cancelled"
    assert fake_openai.hung_up[model].wait(5), "the upstream connection stayed open"
    assert live_server.messages(thread_id)[-1]["content"] == "Héllo"


def wait_until_asked(fake, model: str) -> None:
    """Until the fake upstream has the request: from here on it stays silent."""
    deadline = time.monotonic() + 10
    while not fake.requests[model]:
        assert time.monotonic() < deadline, "the request never reached the upstream"
        time.sleep(0.01)


def cancel_while_silent(server, fake, phase: str, cancel_through=None) -> tuple[list, float]:
    """Start an answer from a fake that goes silent in `phase`, cancel it (through
    `cancel_through`, another instance, if given) and read the stream to its end;
    the events, and the seconds from the cancel to the end."""
    model = next(_names)
    fake.script(model, SILENT_UPSTREAMS[phase])
    thread_id = server.new_thread()
    events = read_stream(server.open_stream(thread_id, "hi", model=f"openai/{model}"))
    wait_until_asked(fake, model)
    stream_id = server.messages(thread_id)[-1]["stream_id"]
    cancelled_at = time.monotonic()
    answer = (cancel_through or server).api("POST", f"/api/v1/streams/{stream_id}/cancel")
    assert (answer.status_code, answer.json()["status"]) == (202, "cancelling")
    everything = list(events)
    took = time.monotonic() - cancelled_at
    assert everything[-1].data["status"] == "cancelled"
    assert server.messages(thread_id)[-1]["status"] == "cancelled"
    assert fake.hung_up[model].wait(5), "the upstream connection stayed open"
    return everything, took


@pytest.mark.parametrize("phase", sorted(SILENT_UPSTREAMS))
def test_cancel_cuts_an_upstream_that_has_not_started_its_answer(live_server, fake_openai,
                                                                 phase):
    everything, took = cancel_while_silent(live_server, fake_openai, phase)
    assert_well_formed(everything)
    assert took < 1  # not the read timeout


def cancel_while_connecting(server, cancel_through=None) -> tuple[list, float]:
    """Start an answer whose provider's host never completes the TCP handshake, cancel
    it (through `cancel_through`, another instance, if given) while it connects, and
    read the stream to its end; the events, and the seconds from the cancel to the end."""
    thread_id = server.new_thread()
    events = read_stream(server.open_stream(thread_id, "hi", model="openai/connecting-forever"))
    seen = read_until(events, lambda e: e.event == "status" and e.data["stage"] == "connecting")
    time.sleep(0.3)  # into the connect
    cancelled_at = time.monotonic()
    answer = (cancel_through or server).api(
        "POST", f"/api/v1/streams/{seen[0].data['stream_id']}/cancel")
    assert (answer.status_code, answer.json()["status"]) == (202, "cancelling")
    everything = seen + list(events)
    took = time.monotonic() - cancelled_at
    assert everything[-1].data["status"] == "cancelled"
    assert server.messages(thread_id)[-1]["status"] == "cancelled"
    return everything, took


def test_cancel_cuts_an_upstream_that_is_still_connecting(live_server):
    everything, took = cancel_while_connecting(live_server)
    assert_well_formed(everything)
    assert took < 1  # not the 60 s connect timeout


def test_a_client_that_disconnects_does_not_stop_the_answer(live_server):
    thread_id = live_server.new_thread()
    response = live_server.open_stream(thread_id, "I will hang up")
    seen = read_until(read_stream(response), lambda e: e.event == "delta" and e.id >= 8)
    response.close()
    stored = live_server.wait_until_settled(thread_id)
    assert stored["status"] == "complete"
    assert stored["content"] == full_demo_answer("I will hang up")
    assert stored["content"].startswith(text_of(seen))


def test_an_openai_stream_through_the_server(live_server, fake_openai):
    model = next(_names)
    fake_openai.script(model, Reply(fixture("openai/text_with_usage.sse"), chunk_size=5,
                                    delay=0.002))
    thread_id = live_server.new_thread(model=f"openai/{model}")
    events = list(read_stream(live_server.open_stream(thread_id, "hello")))
    assert_well_formed(events)
    assert events[0].data["model"] == f"openai/{model}"
    assert [e.data for e in events if e.event == "usage"] == [
        {"type": "usage", "seq": events[-2].id, "input_tokens": 19, "output_tokens": 7}]
    stored = live_server.messages(thread_id)[-1]
    assert stored["content"] == text_of(events) == "Héllo, 世界 👋🏽 — done."
    assert stored["usage"] == {"input_tokens": 19, "output_tokens": 7}


def test_an_upstream_error_mid_stream_ends_with_error_then_done(live_server, fake_openai):
    model = next(_names)
    fake_openai.script(model, Reply(fixture("openai/truncated.sse"), chunk_size=9))
    thread_id = live_server.new_thread()
    events = list(read_stream(live_server.open_stream(thread_id, "x", model=f"openai/{model}")))
    assert_well_formed(events)
    error = next(e.data for e in events if e.event == "error")
    assert (error["code"], error["retryable"]) == ("incomplete_stream", True)
    assert events[-1].data["status"] == "error"
    stored = live_server.messages(thread_id)[-1]
    assert (stored["status"], stored["content"]) == ("error", "This answer is cut off")


def test_idle_streams_get_pings(live_server, fake_openai):
    model = next(_names)
    body = fixture("openai/text_with_usage.sse")
    fake_openai.script(model, Reply(body, chunk_size=len(body) // 2 + 1, delay=2.5))
    thread_id = live_server.new_thread()
    response = live_server.open_stream(thread_id, "x", model=f"openai/{model}")
    raw = b"".join(iter(lambda: response.raw.read1(65536), b""))
    assert b"\n: ping\n\n" in raw  # the server is configured to ping every second


def test_fifty_concurrent_streams_all_complete_correctly(live_server):
    def one(n: int) -> tuple[str, list[Received]]:
        thread_id = live_server.new_thread()
        events = list(read_stream(live_server.open_stream(thread_id, f"stream number {n}")))
        return thread_id, events

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    for n, (thread_id, events) in enumerate(results):
        assert_well_formed(events)
        assert events[-1].data["status"] == "complete"
        stored = live_server.messages(thread_id)[-1]
        assert stored["content"] == text_of(events) == full_demo_answer(f"stream number {n}")


def test_a_second_message_while_one_streams_is_409(live_server):
    thread_id = live_server.new_thread()
    response = live_server.open_stream(thread_id, "first")
    events = read_stream(response)
    read_until(events, lambda e: e.event == "delta")
    busy = live_server.api("POST", f"/api/v1/threads/{thread_id}/messages/stream",
                           json={"content": "second"})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "thread_busy"
    list(events)
    assert [m["content"] for m in live_server.messages(thread_id)][0] == "first"
    assert len(live_server.messages(thread_id)) == 2


def test_deleting_a_thread_stops_its_running_answer(live_server):
    thread_id = live_server.new_thread()
    events = read_stream(live_server.open_stream(thread_id, "delete me"))
    read_until(events, lambda e: e.event == "delta")
    assert live_server.api("DELETE", f"/api/v1/threads/{thread_id}").status_code == 204
    rest = list(events)
    assert rest[-1].event == "done" and rest[-1].data["status"] == "cancelled"
    assert live_server.api("GET", f"/api/v1/threads/{thread_id}").status_code == 404
