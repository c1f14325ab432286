"""The streaming core's shared parts on their own: one deadline timer for a process,
and the in-memory log's bounds."""
from __future__ import annotations

import threading
import time

import pytest

from services.streaming.deadlines import Deadlines
from services.streaming.event_log import MemoryEventLog, StreamEvent, UnknownStream


def test_deadlines_run_in_time_order_and_cancelled_ones_never_run():
    deadlines, ran, all_done = Deadlines(), [], threading.Event()
    deadlines.call_later(0.15, lambda: ran.append("late"))
    cancelled = deadlines.call_later(0.05, lambda: ran.append("cancelled"))
    deadlines.call_later(0.01, lambda: ran.append("soon"))
    deadlines.call_later(0.2, all_done.set)
    deadlines.cancel(cancelled)
    assert all_done.wait(5)
    assert ran == ["soon", "late"]


def test_a_failing_callback_does_not_stop_the_timer(caplog):
    deadlines, later = Deadlines(), threading.Event()
    deadlines.call_later(0.01, lambda: 1 / 0)
    deadlines.call_later(0.05, later.set)
    assert later.wait(5)
    assert "a deadline callback failed" in caplog.text


def test_cancelled_deadlines_do_not_pile_up():
    deadlines = Deadlines()
    for _ in range(1000):
        deadlines.cancel(deadlines.call_later(600, lambda: None))
    kept = deadlines.call_later(600, lambda: None)
    assert len(deadlines) == 1
    assert len(deadlines._heap) < 200  # shed as they were cancelled, not after ten minutes
    deadlines.cancel(kept)


def finished_stream(log: MemoryEventLog, stream_id: str, text: str) -> None:
    log.open(stream_id)
    log.append(stream_id, "delta", {"content": text})
    log.append(stream_id, "done", {})


def test_finished_streams_are_dropped_oldest_first_past_the_byte_bound():
    log = MemoryEventLog(ttl_seconds=3600, max_bytes=2000)
    for n in range(20):
        finished_stream(log, f"s{n}", "x" * 300)
    kept = [n for n in range(20) if log.has(f"s{n}")]
    assert kept == list(range(20 - len(kept), 20)) and 2 <= len(kept) <= 6
    assert log.closed_bytes <= 2000


def test_open_streams_are_never_dropped_for_bytes():
    log = MemoryEventLog(ttl_seconds=3600, max_bytes=100)
    log.open("running")
    log.append("running", "delta", {"content": "y" * 1000})
    finished_stream(log, "done-one", "z" * 1000)
    assert log.has("running") and not log.has("done-one")


def test_finished_streams_expire_after_their_ttl():
    log = MemoryEventLog(ttl_seconds=0.05)
    finished_stream(log, "old", "text")
    time.sleep(0.1)
    assert not log.has("old")
    with pytest.raises(UnknownStream):
        log.read("old", 0, 0.01)


def test_a_copy_takes_only_the_next_events_in_order():
    source, copy = MemoryEventLog(3600), MemoryEventLog(3600)
    source.open("s")
    events = [source.append("s", "delta", {"content": str(n)}) for n in range(4)]
    copy.open("s")
    copy.insert("s", events[:2])
    copy.insert("s", [events[1], events[3]])  # a repeat and a gap: neither is taken
    copy.insert("s", events[2:])
    assert [e.seq for e in copy.read("s", 0, 0.01).events] == [1, 2, 3, 4]
    copy.insert("s", [StreamEvent(5, "done", b"")])
    assert copy.closed("s")
