"""Server-Sent Events: the one module that knows the wire format.

Encoding is for Sluice's own streams (the README's event table) and for OpenAI-style
streams, which are `data:` lines only (`/v1`). Decoding is for the providers' streams
and for clients (tests, benchmarks); it sits on top of
`sseclient-py` and adds what that library leaves out: an event that the body
ends in the middle of is dropped, not dispatched half-read, and the caller can
ask whether the body ended cleanly.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sseclient
from flask import Response

PING = b": ping\n\n"

HEADERS = {
    "Cache-Control": "no-cache",
    # Tells nginx (and proxies that honour it) not to buffer this response.
    "X-Accel-Buffering": "no",
}


def encode_event(seq: int, event_type: str, payload: dict[str, Any]) -> bytes:
    """One event as SSE bytes: `id`, `event`, and `data` as one line of JSON.

    The JSON repeats the type and sequence number, so clients that read only
    `data:` lines see them too. JSON escapes newlines, so `data` is one line.
    """
    body = {"type": event_type, "seq": seq, **payload}
    data = json.dumps(body, ensure_ascii=False)
    return f"id: {seq}\nevent: {event_type}\ndata: {data}\n\n".encode()


def event_data(frame: bytes) -> dict[str, Any]:
    """The `data` object of a frame `encode_event` wrote (its last line, one JSON object)."""
    return json.loads(frame.rstrip(b"\n").rpartition(b"\ndata: ")[2])


def frames_data(chunk: bytes) -> list[dict[str, Any]]:
    """The `data` objects of the events in `chunk`: whole frames `encode_event` wrote,
    one or several (a subscriber's page), or a `: ping` (no events). A frame's JSON is
    one line, so a blank line only ever separates frames."""
    return [event_data(frame) for frame in chunk.split(b"\n\n") if frame.startswith(b"id: ")]


def encode_data(data: Any) -> bytes:
    """A frame of one `data` line and nothing else, as OpenAI-style streams are written:
    a `str` is sent as it is (`[DONE]`), anything else as one line of JSON."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def sse_response(frames: Iterable[bytes]) -> Response:
    """A streaming HTTP response of already encoded SSE frames, flushed as produced."""
    response = Response(frames, status=200, headers=HEADERS)
    # Set outright: Flask would otherwise append "; charset=utf-8" to a text/* type.
    response.headers["Content-Type"] = "text/event-stream"
    return response


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SSEDecoder:
    """Decodes a byte stream, in chunks split anywhere, into `SSEEvent`s.

    Iterate it once. Afterwards `complete` tells whether the body ended on an
    event boundary; an unterminated last event is never yielded.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._tail = b""
        self._exhausted = False
        self.complete = True

    def _source(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                self._tail = (self._tail + chunk)[-4:]
                yield chunk
        self._exhausted = True

    def __iter__(self) -> Iterator[SSEEvent]:
        """Raises `UnicodeDecodeError` for a complete event that is not UTF-8."""
        try:
            for event in sseclient.SSEClient(self._source()).events():
                if self._exhausted:
                    # sseclient-py dispatches whatever is buffered when the body ends;
                    # by the spec an event without its blank line is incomplete.
                    self.complete = False
                    return
                yield SSEEvent(event=event.event, data=event.data, id=event.id)
        except UnicodeDecodeError:
            if not self._exhausted:
                raise
            self.complete = False  # the body ended inside a multi-byte character
            return
        self.complete = self._ends_on_boundary()

    def _ends_on_boundary(self) -> bool:
        tail = self._tail
        return not tail or tail.endswith((b"\n\n", b"\r\r", b"\r\n\r\n", b"\n\r\n"))


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """The complete events in `chunks`, dropping an unterminated last one."""
    return iter(SSEDecoder(chunks))
