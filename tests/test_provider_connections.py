"""Every provider hands its connection back once a stream has ended, so the next answer
skips the TCP (and, against a real provider, TLS) handshake; a body that goes on after
the stream's last event costs its connection, never the answer's time. And a call's
connection can be cut from another thread in every phase, before headers too."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from services.providers.anthropic import AnthropicProvider
from services.providers.base import Finish, Provider
from services.providers.calls import UpstreamCall, calling
from services.providers.errors import ProviderConnectionError, ProviderError
from services.providers.http import DRAIN_SECONDS, pooled_session
from services.providers.ollama import OllamaProvider
from services.providers.openai import OpenAIProvider
from services.providers.openai_responses import OpenAIResponsesProvider

from .fake_upstream import SILENT_UPSTREAMS
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


# --- cutting a call from another thread ------------------------------------------------

OPENAI = Replayer("openai", "cut-openai")


def call_until_it_fails(provider: Provider, model: str, call: UpstreamCall) -> ProviderError:
    """Make the call with `call` current, read all of it, and return how it failed."""
    with calling(call):
        try:
            stream = provider.stream(OPENAI.ask(model))
            try:
                list(stream)
            finally:
                stream.close()
        except ProviderError as exc:
            return exc
    raise AssertionError("the call was not cut")


def slow_openai(url: str) -> Provider:
    return OpenAIProvider(base_url=url + "/v1", api_key="sk-test", session=pooled_session(),
                          connect_timeout=2, read_timeout=30)


@pytest.mark.parametrize("phase", sorted(SILENT_UPSTREAMS))
def test_a_call_is_cut_while_the_upstream_is_silent(fake_openai, phase):
    model = OPENAI.model()
    fake_openai.script(model, SILENT_UPSTREAMS[phase])
    call = UpstreamCall()

    def interrupt_once_asked() -> None:
        while not fake_openai.requests[model]:
            time.sleep(0.01)
        call.interrupt()

    threading.Thread(target=interrupt_once_asked, daemon=True).start()
    started = time.monotonic()
    call_until_it_fails(slow_openai(fake_openai.url), model, call)
    assert time.monotonic() - started < 1  # not the 30 s read timeout
    assert fake_openai.hung_up[model].wait(5)


def test_a_call_is_cut_while_it_connects(unconnectable_port):
    """A host that never completes the handshake: the interrupt wakes the connect,
    long before the connect timeout."""
    provider = OpenAIProvider(base_url=f"http://127.0.0.1:{unconnectable_port}/v1",
                              api_key="sk-test", session=pooled_session(),
                              connect_timeout=30, read_timeout=30)
    call = UpstreamCall()
    threading.Timer(0.3, call.interrupt).start()
    started = time.monotonic()
    error = call_until_it_fails(provider, OPENAI.model(), call)
    assert isinstance(error, ProviderConnectionError)
    assert time.monotonic() - started < 1  # not the 30 s connect timeout


def test_a_call_interrupted_before_it_connects_never_sends(fake_openai):
    model = OPENAI.model()
    fake_openai.script(model, SILENT_UPSTREAMS["no-headers"])
    call = UpstreamCall()
    call.interrupt()
    call_until_it_fails(slow_openai(fake_openai.url), model, call)
    assert fake_openai.requests[model] == []


def test_interrupting_an_ended_call_leaves_its_connection_to_the_next(fake_openai):
    provider = slow_openai(fake_openai.url)
    model = OPENAI.script(fake_openai, OPENAI.fixture("text_with_usage.sse"), delay=0.02,
                          chunk_size=200)
    ended, next_call = UpstreamCall(), UpstreamCall()
    with calling(ended):
        first = answer(provider, OPENAI, model)
    with calling(next_call):
        stream = provider.stream(OPENAI.ask(model))
        ended.interrupt()  # late: its connection now carries the next call
        second = list(stream)
        stream.close()
    assert texts(first) == texts(second) != ""
    ports = {request["client_port"] for request in fake_openai.requests[model]}
    assert len(ports) == 1
