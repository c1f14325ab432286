"""A tiny SSE client for tests, built on Sluice's own decoder."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from services.sse import SSEDecoder


@dataclass(frozen=True)
class Received:
    id: int
    event: str
    data: dict[str, Any]


def body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as the server flushes it (one read returns what has arrived)."""
    while data := response.raw.read1(65536):
        yield data


def read_stream(response: requests.Response) -> Iterator[Received]:
    """The events of a Sluice stream, checking that `event` and `data.type` agree."""
    for sse in SSEDecoder(body_chunks(response)):
        data = sse.json()
        assert data["type"] == sse.event, (sse.event, data)
        assert data["seq"] == int(sse.id), (sse.id, data)
        yield Received(int(sse.id), sse.event, data)


def read_test_response(response) -> list[Received]:
    """The events of a streamed response from Flask's test client."""
    return [Received(int(e.id), e.event, e.json()) for e in SSEDecoder(response.response)]


def text_of(events: list[Received]) -> str:
    return "".join(e.data["content"] for e in events if e.event == "delta")
