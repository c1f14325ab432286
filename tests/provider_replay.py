"""What the provider tests share: they script the fake upstream with a recorded body
(tests/fixtures), written in awkward pieces, and read back what a provider made of it.

Each test file makes one `Replayer`, naming where its recordings live, how its model
names begin and what differs in its wire format; the helpers hang off that.
"""
from __future__ import annotations

import itertools
import re

import pytest

from services.providers.base import ChatMessage, ChatRequest, TextDelta

from .fake_upstream import FakeUpstream, Reply, fixture

# The id Sluice gives a tool call that its provider sent without one.
GENERATED_ID = re.compile(r"call_[0-9a-f]{24}")

# Every byte alone, then a few odd sizes, close-delimited as well as chunked.
SPLITS = [
    pytest.param({"chunk_size": 1}, id="byte-by-byte"),
    pytest.param({"chunk_size": 3}, id="3-bytes"),
    pytest.param({"chunk_size": 7, "chunked": False}, id="7-bytes-close-delimited"),
    pytest.param({}, id="one-piece"),
]


def texts(events: list) -> str:
    """The answer's text, all its pieces joined."""
    return "".join(e.text for e in events if isinstance(e, TextDelta))


class Replayer:
    """One provider's way of replaying recordings through the (session-wide) fake upstream.

    `folder` is its recordings' folder under tests/fixtures; `prefix` begins its model
    names, so it must differ from every other Replayer's; `content_type` is what a
    streamed reply is labelled; `system` is the system message of `ask`, if any.
    """

    def __init__(self, folder: str, prefix: str, *, content_type: str = "text/event-stream",
                 system: str | None = "Be brief.") -> None:
        self.folder = folder
        self.content_type = content_type
        self.system = system
        self._names = (f"{prefix}-{n}" for n in itertools.count())

    def model(self) -> str:
        """A model name no test has used yet, so its script and requests are its own."""
        return next(self._names)

    def fixture(self, name: str) -> bytes:
        """The recorded body `name` from this provider's folder, byte for byte."""
        return fixture(f"{self.folder}/{name}")

    def ask(self, model: str) -> ChatRequest:
        """The plain request: the system message, if any, and "Say hello"."""
        system = (ChatMessage("system", self.system),) if self.system is not None else ()
        return ChatRequest(model=model, messages=(*system, ChatMessage("user", "Say hello")))

    def script(self, fake: FakeUpstream, body: bytes, **reply) -> str:
        """A fresh model whose next request `fake` answers with `body`; `reply` are further
        `Reply` fields (the content type defaults to this provider's streaming one)."""
        model = self.model()
        fake.script(model, Reply(body, **{"content_type": self.content_type, **reply}))
        return model

    def collect(self, provider, model: str) -> list:
        """Every event of the stream for `ask(model)`."""
        return list(provider.stream(self.ask(model)))

    def until_error(self, provider, model: str, error: type,
                    match: str | None = None) -> tuple:
        """The events received before the stream for `ask(model)` raised `error` (its
        message matching `match`, if given), and the exception."""
        received = []
        with pytest.raises(error, match=match) as caught:
            for event in provider.stream(self.ask(model)):
                received.append(event)
        return received, caught.value

    def replay(self, provider, fake: FakeUpstream, name: str, split: dict) -> list:
        """Every event of a stream whose body is the recording `name`, written as `split`
        says."""
        return self.collect(provider, self.script(fake, self.fixture(name), **split))

    def replay_until_error(self, provider, fake: FakeUpstream, name: str, split: dict,
                           error: type, match: str | None = None) -> tuple:
        """Like `until_error`, for a stream whose body is the recording `name`."""
        model = self.script(fake, self.fixture(name), **split)
        return self.until_error(provider, model, error, match)
