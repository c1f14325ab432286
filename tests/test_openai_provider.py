"""The openai provider rebuilds exactly what the model sent, from awkwardly split bodies."""
from __future__ import annotations

import threading
from dataclasses import replace
import time

import pytest

from services.providers.base import (ChatMessage, ChatRequest, Completion, Finish,
                                     ReasoningDelta, TextDelta, ToolCall, ToolSpec, Usage)
from services.providers.errors import (AuthenticationError, ContentFilterError,
                                       IncompleteStreamError,
                                       OverloadedError, ProviderConnectionError,
                                       ProviderTimeoutError, RateLimitError,
                                       UpstreamStreamError)
from services.providers.http import pooled_session
from services.providers.openai import OpenAIProvider, default_max_tokens_field

from .provider_replay import GENERATED_ID, SPLITS, Replayer, texts

wire = Replayer("openai", "case")


@pytest.fixture
def provider(fake_openai):
    return OpenAIProvider(base_url=fake_openai.url + "/v1", api_key="sk-test",
                          session=pooled_session(), connect_timeout=2, read_timeout=2)


@pytest.mark.parametrize("split", SPLITS)
def test_text_usage_and_finish_are_rebuilt(provider, fake_openai, split):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"), **split)
    events = wire.collect(provider, model)
    assert texts(events) == "Héllo, 世界 👋🏽 — done."
    assert events[-2:] == [Usage(19, 7), Finish("stop")]
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test"
    assert sent["json"]["stream"] is True
    assert sent["json"]["stream_options"] == {"include_usage": True}
    assert sent["json"]["messages"] == [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Say hello"}]


@pytest.mark.parametrize("split", SPLITS)
def test_crlf_keepalive_comments_and_blank_data_lines(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "length_crlf_keepalive.sse", split)
    assert texts(events) == "Line one\nline two ends"
    assert events[-2:] == [Usage(19, 4), Finish("length")]


@pytest.mark.parametrize("split", SPLITS)
def test_an_error_object_in_the_stream_is_an_error_even_before_done(provider, fake_openai,
                                                                     split):
    received, _ = wire.replay_until_error(provider, fake_openai, "error_then_done.sse", split,
                                          UpstreamStreamError,
                                          match="ran out of KV cache blocks")
    assert texts(received) == "Partial an"


@pytest.mark.parametrize("split", SPLITS)
def test_a_body_that_ends_without_done_is_incomplete_not_a_success(provider, fake_openai,
                                                                    split):
    received, error = wire.replay_until_error(provider, fake_openai, "truncated.sse", split,
                                              IncompleteStreamError)
    assert texts(received) == "This answer is cut off"
    assert error.retryable
    assert not any(isinstance(e, Finish) for e in received)


@pytest.mark.parametrize(("status", "error", "retryable"), [
    (401, AuthenticationError, False),
    (429, RateLimitError, True),
    (503, OverloadedError, True),
])
def test_http_errors_map_to_the_exception_tree(provider, fake_openai, status, error, retryable):
    body = b'{"error": {"message": "nope, try later", "type": "x", "code": null}}'
    model = wire.script(fake_openai, body, status=status, content_type="application/json")
    with pytest.raises(error, match="nope, try later") as caught:
        provider.stream(wire.ask(model))
    assert caught.value.status == status
    assert caught.value.retryable is retryable


def test_a_silent_upstream_times_out(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse")[:300], then_hang=5)
    with pytest.raises(ProviderTimeoutError):
        wire.collect(provider, model)


def test_an_unreachable_server_is_a_connection_error():
    provider = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key=None,
                              session=pooled_session(), connect_timeout=1, read_timeout=1)
    with pytest.raises(ProviderConnectionError):
        provider.stream(wire.ask("any"))


def test_non_streaming_completion(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("completion.json"),
                        content_type="application/json", chunk_size=5)
    assert provider.complete(wire.ask(model)) == Completion(
        text="Héllo, 世界 👋🏽", finish_reason="stop", usage=Usage(19, 7))
    assert fake_openai.requests[model][0]["json"]["stream"] is False


def test_close_from_another_thread_cuts_a_silent_upstream(fake_openai):
    provider = OpenAIProvider(base_url=fake_openai.url + "/v1", api_key="sk-test",
                              session=pooled_session(), connect_timeout=2, read_timeout=60)
    body = wire.fixture("text_with_usage.sse")
    first_two_events = body[:body.index(b"\n\n", body.index(b"\n\n") + 2) + 2]
    model = wire.script(fake_openai, first_two_events, then_hang=60)
    stream = provider.stream(wire.ask(model))
    events = iter(stream)
    assert isinstance(next(events), TextDelta)
    threading.Timer(0.2, stream.interrupt).start()
    started = time.monotonic()
    assert list(events) == []  # ends quietly: it was stopped on purpose
    assert time.monotonic() - started < 10  # not the 60 s the upstream would stay silent
    stream.close()
    assert fake_openai.hung_up[model].wait(5)


@pytest.mark.parametrize("split", SPLITS)
def test_parallel_tool_calls_are_assembled_by_index(provider, fake_openai, split):
    # Azure's empty-choices first chunk; id and name with the role, or arriving late.
    assert wire.replay(provider, fake_openai, "parallel_tool_calls.sse", split) == [
        Usage(82, 41),
        ToolCall("call_W8xq", "get_weather", '{"city": "Zürich"}'),
        ToolCall("call_T3mz", "get_time", '{"tz": "Asia/Tokyo"}'),
        Finish("tool_calls"),
    ]


@pytest.mark.parametrize("split", SPLITS)
def test_reasoning_fields_and_a_choice_without_delta(provider, fake_openai, split):
    assert wire.replay(provider, fake_openai, "reasoning.sse", split) == [
        ReasoningDelta("The user greets; "), ReasoningDelta("answer warmly."),
        TextDelta("Hello! 👋"), Usage(9, 12), Finish("stop")]


def test_content_filter_withholds_the_rest_of_the_answer(provider, fake_openai):
    received, error = wire.replay_until_error(provider, fake_openai, "content_filter.sse",
                                              {"chunk_size": 4}, ContentFilterError)
    assert texts(received) == "Here is how to"
    assert (error.code, error.retryable) == ("content_filter", False)


def test_tools_and_tool_turns_are_sent_in_openai_shape(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"))
    call = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')
    request = ChatRequest(model=model, messages=(
        ChatMessage("user", "Weather in Oslo?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "-3°C, snow", tool_call_id="call_1", name="get_weather"),
    ), tools=(ToolSpec("get_weather", "Current weather",
                       {"type": "object", "properties": {"city": {"type": "string"}}}),),
        max_tokens=50, temperature=0.2)
    list(provider.stream(request))
    sent = fake_openai.requests[model][0]["json"]
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3°C, snow"},
    ]
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    assert (sent["max_tokens"], sent["temperature"]) == (50, 0.2)


@pytest.mark.parametrize(("base_url", "field"), [
    ("https://api.openai.com/v1", "max_completion_tokens"),
    ("https://api.openai.com:443/v1/", "max_completion_tokens"),
    ("http://127.0.0.1:8000/v1", "max_tokens"),
    ("https://api.openai.com.example.net/v1", "max_tokens"),
])
def test_the_token_limit_field_follows_the_server_unless_set(base_url, field):
    assert default_max_tokens_field(base_url) == field
    assert OpenAIProvider(base_url, None, pooled_session()).max_tokens_field == field
    chosen = OpenAIProvider(base_url, None, pooled_session(), max_tokens_field="max_tokens")
    assert chosen.max_tokens_field == "max_tokens"


def test_max_completion_tokens_is_sent_when_set(fake_openai):
    provider = OpenAIProvider(fake_openai.url + "/v1", "sk-test", pooled_session(),
                              max_tokens_field="max_completion_tokens")
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"))
    list(provider.stream(replace(wire.ask(model), max_tokens=50)))
    sent = fake_openai.requests[model][0]["json"]
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent


# A compatible server's tool call without an id, as some llama.cpp and vLLM versions send it.
CALL_WITHOUT_ID = (
    'data: {"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,'
    '"type":"function","function":{"name":"get_time","arguments":"{}"}}]}}]}\n\n'
    'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
    "data: [DONE]\n\n").encode()


def test_calls_without_ids_get_ids_no_other_round_has(provider, fake_openai):
    ids = [event.id for _ in range(2)
           for event in wire.collect(provider, wire.script(fake_openai, CALL_WITHOUT_ID))
           if isinstance(event, ToolCall)]
    assert len(set(ids)) == 2 and all(GENERATED_ID.fullmatch(i) for i in ids)
