"""The anthropic provider rebuilds exactly what Claude sent, from awkwardly split bodies,
and sends the conversation in the shape the Messages API wants."""
from __future__ import annotations

import json

import pytest

from services.providers.anthropic import AnthropicProvider
from services.providers.base import (ChatMessage, ChatRequest, Completion, Finish,
                                     ReasoningDelta, TextDelta, ToolCall, ToolSpec, Usage)
from services.providers.errors import (AuthenticationError, ContentFilterError,
                                       IncompleteStreamError, OverloadedError,
                                       RateLimitError, UpstreamStreamError)
from services.providers.http import pooled_session

from .provider_replay import SPLITS, Replayer, texts

wire = Replayer("anthropic", "claude-case")


@pytest.fixture
def provider(fake_openai):
    return AnthropicProvider(base_url=fake_openai.url, api_key="sk-ant-test",
                             session=pooled_session(), connect_timeout=2, read_timeout=2)


@pytest.mark.parametrize("split", SPLITS)
def test_text_usage_and_finish_are_rebuilt(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "text_with_usage.sse", split)
    assert texts(events) == "Grüße, 世界 👋🏽"
    assert events[0] == Usage(21, None)
    assert events[-2:] == [Usage(None, 14), Finish("stop")]


@pytest.mark.parametrize("split", SPLITS)
def test_thinking_becomes_reasoning_and_its_signature_is_not_shown(provider, fake_openai,
                                                                   split):
    events = wire.replay(provider, fake_openai, "thinking.sse", split)
    assert events == [
        Usage(12 + 1024, None),  # cache reads count as input
        ReasoningDelta("The user wants 27 × 453. "),
        ReasoningDelta("27 × 453 = 12 231."),
        TextDelta("27 × 453 = "),
        TextDelta("12,231"),
        Usage(None, 61),
        Finish("stop"),
    ]


@pytest.mark.parametrize("split", SPLITS)
def test_a_tool_call_is_assembled_from_its_json_pieces(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "tool_use.sse", split)
    assert events == [
        Usage(472, None),
        TextDelta("I'll look up the weather in Paris."),
        ToolCall("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather",
                 '{"city": "Paris", "unit": "celsius"}'),
        Usage(None, 89),
        Finish("tool_calls"),
    ]


@pytest.mark.parametrize("split", SPLITS)
def test_parallel_tool_calls_come_out_separately_in_order(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "parallel_tools.sse", split)
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == [
        ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city": "Paris"}'),
        ToolCall("toolu_01B7mGzC8uVxYtR3nKqL4sWe", "get_time", '{"timezone": "Asia/Tokyo"}'),
    ]
    assert texts(events) == "Checking both cities."
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize("split", SPLITS)
def test_server_side_web_search_is_not_a_tool_call_for_us(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "web_search.sse", split)
    assert events == [
        Usage(2679, None),
        TextDelta("Let me search for that."),
        TextDelta("The Seine hosted swimming events in 2024."),
        Usage(None, 510),
        Finish("stop"),
    ]


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("text_with_usage.sse", "Grüße, 世界 👋🏽", "stop"),  # end_turn
    ("max_tokens.sse", "Once upon a time, in a city of bridges", "length"),
    ("tool_use.sse", "I'll look up the weather in Paris.", "tool_calls"),
    ("stop_sequence.sse", "1. Flour\n2. Eggs\n", "stop"),
])
def test_stop_reasons_are_normalised(provider, fake_openai, name, text, reason):
    events = wire.replay(provider, fake_openai, name, {"chunk_size": 5})
    assert texts(events) == text
    assert events[-1] == Finish(reason)


@pytest.mark.parametrize("split", SPLITS)
def test_a_refusal_is_a_content_filter_error(provider, fake_openai, split):
    received, error = wire.replay_until_error(provider, fake_openai, "refusal.sse", split,
                                              ContentFilterError)
    assert texts(received) == "I can"
    assert error.code == "content_filter"
    assert not any(isinstance(e, Finish) for e in received)


@pytest.mark.parametrize("split", SPLITS)
def test_an_overload_mid_stream_keeps_the_text_and_is_retryable(provider, fake_openai, split):
    received, error = wire.replay_until_error(provider, fake_openai, "overloaded_midstream.sse",
                                              split, OverloadedError)
    assert received == [Usage(40, None), TextDelta("Partial an")]
    assert error.retryable is True
    assert error.code == "overloaded"
    assert "Overloaded" in error.message


@pytest.mark.parametrize("split", SPLITS)
def test_a_body_that_ends_without_message_stop_is_incomplete(provider, fake_openai, split):
    received, error = wire.replay_until_error(provider, fake_openai, "truncated.sse", split,
                                              IncompleteStreamError)
    assert texts(received) == "This answer is cut off"  # the half-read last event is dropped
    assert error.retryable
    assert not any(isinstance(e, Finish) for e in received)


@pytest.mark.parametrize("split", SPLITS)
def test_crlf_line_endings_and_pings(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "crlf_pings.sse", split)
    assert events == [Usage(9, None), TextDelta("Line one\nline"), TextDelta(" two"),
                      Usage(None, 5), Finish("stop")]


@pytest.mark.parametrize(("body", "message"), [
    (b'event: message_start\ndata: {"type":"message_start",\n\n', "not JSON"),
    (b'event: content_block_delta\ndata: {"text":"\xff\xfe"}\n\n', "not UTF-8"),
])
def test_a_body_that_is_not_the_format_is_a_stream_error(provider, fake_openai, body, message):
    model = wire.script(fake_openai, body)
    with pytest.raises(UpstreamStreamError, match=message):
        wire.collect(provider, model)


@pytest.mark.parametrize(("status", "error_type", "error", "retryable"), [
    (401, "authentication_error", AuthenticationError, False),
    (429, "rate_limit_error", RateLimitError, True),
    (529, "overloaded_error", OverloadedError, True),
])
def test_http_errors_map_to_the_exception_tree(provider, fake_openai, status, error_type,
                                               error, retryable):
    body = json.dumps({"type": "error",
                       "error": {"type": error_type, "message": "nope, try later"}}).encode()
    model = wire.script(fake_openai, body, status=status, content_type="application/json")
    with pytest.raises(error, match="nope, try later") as caught:
        provider.stream(wire.ask(model))
    assert caught.value.status == status
    assert caught.value.retryable is retryable


def test_retry_after_is_kept_on_a_rate_limit(provider, fake_openai):
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    model = wire.script(fake_openai, body, status=429, content_type="application/json",
                        headers={"Retry-After": "7"})
    with pytest.raises(RateLimitError) as caught:
        provider.stream(wire.ask(model))
    assert caught.value.retry_after == 7.0


def test_the_request_is_in_the_messages_api_shape(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"))
    weather = ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city": "Paris"}')
    clock = ToolCall("toolu_01B7mGzC8uVxYtR3nKqL4sWe", "get_time", '{"timezone": "Asia/Tokyo"}')
    request = ChatRequest(model=model, temperature=0.2, messages=(
        ChatMessage("system", "Be brief."),
        ChatMessage("system", "Answer in French."),
        ChatMessage("user", "Weather in Paris, time in Tokyo?"),
        ChatMessage("assistant", "Checking both.", tool_calls=(weather, clock)),
        ChatMessage("tool", "18°C, cloudy", tool_call_id=weather.id, name="get_weather"),
        ChatMessage("tool", "21:04", tool_call_id=clock.id, name="get_time"),
        ChatMessage("assistant", "Il fait 18°C ; il est 21 h 04."),
        ChatMessage("user", "Merci"),
    ), tools=(ToolSpec("get_weather", "Current weather for a city.",
                       {"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"]}),))
    assert texts(list(provider.stream(request))) == "Grüße, 世界 👋🏽"
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "sk-ant-test"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["json"] == {
        "model": model,
        "system": "Be brief.\n\nAnswer in French.",
        "max_tokens": 4096,
        "temperature": 0.2,
        "stream": True,
        "tools": [{"name": "get_weather", "description": "Current weather for a city.",
                   "input_schema": {"type": "object",
                                    "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris, time in Tokyo?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": weather.id, "name": "get_weather",
                 "input": {"city": "Paris"}},
                # get_time is not offered any more: its call is told, not replayed
                {"type": "text", "text": '[called tool get_time with {"timezone": "Asia/Tokyo"}]'},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": weather.id, "content": "18°C, cloudy"},
                {"type": "text", "text": "[result of get_time: 21:04]"},
            ]},
            {"role": "assistant", "content": "Il fait 18°C ; il est 21 h 04."},
            {"role": "user", "content": "Merci"},
        ],
    }


def test_no_key_sends_no_key_header_and_max_tokens_is_the_callers(fake_openai):
    provider = AnthropicProvider(base_url=fake_openai.url + "/", api_key=None,
                                 session=pooled_session(), connect_timeout=2, read_timeout=2)
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"))
    request = ChatRequest(model=model, max_tokens=256,
                          messages=(ChatMessage("user", "Say hello"),))
    list(provider.stream(request))
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/v1/messages"
    assert "x-api-key" not in {name.lower() for name in sent["headers"]}
    assert sent["json"]["max_tokens"] == 256
    assert "system" not in sent["json"] and "tools" not in sent["json"]


def test_non_streaming_completion(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("completion.json"),
                        content_type="application/json", chunk_size=5)
    assert provider.complete(wire.ask(model)) == Completion(
        text="Grüße! Checking Paris, 世界 👋🏽",
        reasoning="Paris weather needs the tool.",
        finish_reason="tool_calls",
        usage=Usage(384 + 2048, 97),
        tool_calls=(ToolCall("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "get_weather",
                             '{"city": "Paris", "unit": "celsius"}'),),
    )
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/v1/messages"
    assert sent["json"]["stream"] is False
    assert sent["json"]["system"] == "Be brief."


def test_without_tools_past_tool_turns_are_text_in_alternating_turns(provider, fake_openai):
    """Anthropic refuses tool_use and tool_result blocks in a request without tools."""
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"))
    call = ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city": "Paris"}')
    request = ChatRequest(model=model, messages=(
        ChatMessage("user", "Weather in Paris?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "18°C", tool_call_id=call.id, name="get_weather"),
        ChatMessage("user", "And tomorrow?"),
    ))
    list(provider.stream(request))
    sent = fake_openai.requests[model][0]["json"]
    assert "tools" not in sent
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '[called tool get_weather with {"city": "Paris"}]'},
        {"role": "user", "content": [{"type": "text", "text": "[result of get_weather: 18°C]"},
                                     {"type": "text", "text": "And tomorrow?"}]},
    ]
