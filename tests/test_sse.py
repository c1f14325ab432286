"""SSE encoding and decoding, byte by byte."""
from __future__ import annotations

import json

import pytest

from services.sse import PING, SSEDecoder, encode_event


def decode(chunks: list[bytes]) -> tuple[list[tuple[str, str, str | None]], bool]:
    decoder = SSEDecoder(chunks)
    events = [(e.event, e.data, e.id) for e in decoder]
    return events, decoder.complete


def every_split(body: bytes) -> list[list[bytes]]:
    """The body cut in two at every offset, and cut into single bytes."""
    return [[body[:i], body[i:]] for i in range(len(body) + 1)] + [
        [body[i:i + 1] for i in range(len(body))]]


DECODING = [
    pytest.param(b"data: hi\n\n", [("message", "hi", None)], id="lf"),
    pytest.param(b"data: hi\r\n\r\n", [("message", "hi", None)], id="crlf"),
    pytest.param(b"data: hi\r\r", [("message", "hi", None)], id="cr"),
    pytest.param(b"event: delta\nid: 7\ndata: x\n\n", [("delta", "x", "7")], id="fields"),
    pytest.param(b"data: one\ndata: two\n\n", [("message", "one\ntwo", None)], id="multi-line"),
    pytest.param(b": keep-alive\n\ndata: a\n\n", [("message", "a", None)], id="comment-block"),
    pytest.param(b"data: a\n: inline comment\n\n", [("message", "a", None)], id="comment-line"),
    pytest.param(b"data:\n\n", [("message", "", None)], id="empty-data"),
    pytest.param(b"data:no-space\n\n", [("message", "no-space", None)], id="no-space"),
    pytest.param(b"data:  two spaces\n\n", [("message", " two spaces", None)], id="one-space-cut"),
    pytest.param(b"event: only-a-name\n\n", [], id="no-data-no-event"),
    pytest.param("data: Grüße 世界 👋🏽\n\n".encode(), [("message", "Grüße 世界 👋🏽", None)],
                 id="multi-byte"),
    pytest.param(b"data: a\n\ndata: b\r\n\r\ndata: c\n\n",
                 [("message", "a", None), ("message", "b", None), ("message", "c", None)],
                 id="mixed-endings"),
]


@pytest.mark.parametrize(("body", "expected"), DECODING)
def test_decoder_gives_the_same_events_however_the_bytes_are_split(body, expected):
    for chunks in every_split(body):
        assert decode(chunks) == (expected, True), chunks


@pytest.mark.parametrize("body", [
    pytest.param(b"data: {\"half\": ", id="mid-line"),
    pytest.param(b"data: complete line\n", id="no-blank-line"),
    pytest.param("data: caf\u00e9".encode()[:-1], id="mid-utf8-character"),
])
def test_an_event_cut_off_by_the_end_of_the_body_is_dropped_and_reported(body):
    whole = b"data: first\n\n" + body
    for chunks in every_split(whole):
        assert decode(chunks) == ([("message", "first", None)], False), chunks


def test_empty_body_is_complete_with_no_events():
    assert decode([]) == ([], True)
    assert decode([b"", b""]) == ([], True)


def test_encoded_event_has_id_event_and_one_json_data_line():
    frame = encode_event(7, "delta", {"content": "Hel\nlo \u2028 \"x\" 世界"})
    lines = frame.decode().split("\n")
    assert lines[:2] == ["id: 7", "event: delta"]
    assert lines[2].startswith("data: ")
    assert lines[3:] == ["", ""]  # exactly one blank line ends the event
    assert json.loads(lines[2][6:]) == {"type": "delta", "seq": 7,
                                        "content": "Hel\nlo \u2028 \"x\" 世界"}


def test_encoding_round_trips_through_the_decoder_at_every_split():
    frames = (encode_event(1, "start", {"model": "demo/echo"}) + PING
              + encode_event(2, "delta", {"content": "👋🏽\r\n"}))
    for chunks in every_split(frames):
        events, complete = decode(chunks)
        assert complete
        assert [(name, json.loads(data), ident) for name, data, ident in events] == [
            ("start", {"type": "start", "seq": 1, "model": "demo/echo"}, "1"),
            ("delta", {"type": "delta", "seq": 2, "content": "👋🏽\r\n"}, "2"),
        ]
