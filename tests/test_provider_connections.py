"""Every provider hands its connection back once a stream has ended, so the next answer
skips the TCP (and, against a real provider, TLS) handshake; a body that goes on after
the stream's last event costs its connection, never the answer's time."""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from services.providers.anthropic import AnthropicProvider
from services.providers.base import Finish, Provider
from services.providers.http import DRAIN_SECONDS, pooled_session
from services.providers.ollama import OllamaProvider
from services.providers.openai import OpenAIProvider
from services.providers.openai_responses import OpenAIResponsesProvider

from .provider_replay import Replayer, texts

Make = Callable[[str], Provider]
PROVIDERS = [
    pytest.param(Replayer("openai", "reuse-openai"), "text_with_usage.sse",
                 lambda url: OpenAIProvider(base_url=url + "/v1", api_key="sk-test",
                                            session=pooled_session(), connect_timeout=2,
                                            read_timeout=2), id="openai"),
    pytest.param(Replayer("openai_responses", "reuse-responses"), "text_with_usage.sse",
                 lambda url: OpenAIResponsesProvider(base_url=url + "/v1", api_key="sk-test",
                                                     session=pooled_session(),
                                                     connect_timeout=2, read_timeout=2),
                 id="openai_responses"),
    pytest.param(Replayer("anthropic", "reuse-claude"), "text_with_usage.sse",
                 lambda url: AnthropicProvider(base_url=url, api_key="sk-ant-test",
                                               session=pooled_session(), connect_timeout=2,
                                               read_timeout=2), id="anthropic"),
    pytest.param(Replayer("ollama", "reuse-ollama", content_type="application/x-ndjson",
                          system=None), "text_with_usage.ndjson",
                 lambda url: OllamaProvider(base_url=url, session=pooled_session(),
                                            connect_timeout=2, read_timeout=2), id="ollama"),
]


def answer(provider: Provider, wire: Replayer, model: str) -> list:
    stream = provider.stream(wire.ask(model))
    try:
        return list(stream)
    finally:
        stream.close()


@pytest.mark.parametrize(("wire", "recording", "make"), PROVIDERS)
def test_consecutive_answers_share_one_connection(fake_openai, wire, recording, make):
    provider = make(fake_openai.url)
    model = wire.script(fake_openai, wire.fixture(recording))
    first, second = answer(provider, wire, model), answer(provider, wire, model)

    assert texts(first) == texts(second) != ""
    assert isinstance(second[-1], Finish)
    ports = {request["client_port"] for request in fake_openai.requests[model]}
    assert len(fake_openai.requests[model]) == 2 and len(ports) == 1


@pytest.mark.parametrize(("wire", "recording", "make"), PROVIDERS)
def test_a_body_that_goes_on_after_the_end_costs_the_connection_not_the_answer(
        fake_openai, wire, recording, make):
    provider = make(fake_openai.url)
    model = wire.script(fake_openai, wire.fixture(recording), then_hang=3)
    started = time.monotonic()
    first = answer(provider, wire, model)
    took = time.monotonic() - started
    second = answer(provider, wire, model)

    assert isinstance(first[-1], Finish) and texts(first) == texts(second)
    assert took < 1 + DRAIN_SECONDS  # not the 3 s the server stayed silent
    ports = [request["client_port"] for request in fake_openai.requests[model]]
    assert ports[0] != ports[1]  # the hanging connection was not reused
