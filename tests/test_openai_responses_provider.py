"""The openai-responses provider rebuilds exactly what the model sent, from split bodies."""
from __future__ import annotations

import pytest

from services.providers.base import (ChatMessage, ChatRequest, Completion, Finish,
                                     ReasoningDelta, TextDelta, ToolCall, ToolSpec, Usage)
from services.providers.errors import (ContentFilterError, IncompleteStreamError,
                                       RateLimitError, UpstreamServerError,
                                       UpstreamStreamError)
from services.providers.http import pooled_session
from services.providers.openai_responses import OpenAIResponsesProvider

from .provider_replay import SPLITS, Replayer, texts

wire = Replayer("openai_responses", "responses-case")

WEATHER = ToolSpec("get_weather", "Current weather for a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]})


@pytest.fixture
def provider(fake_openai):
    return OpenAIResponsesProvider(base_url=fake_openai.url + "/v1", api_key="sk-test",
                                   session=pooled_session(), connect_timeout=2, read_timeout=2)


@pytest.mark.parametrize("split", SPLITS)
def test_text_usage_and_finish_are_rebuilt(provider, fake_openai, split):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"), **split)
    events = wire.collect(provider, model)
    assert events == [TextDelta("Grüße"), TextDelta(", 世界"), TextDelta(" 👋🏽"),
                      Usage(21, 9), Finish("stop")]
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/v1/responses"
    assert sent["headers"]["Authorization"] == "Bearer sk-test"
    assert sent["json"] == {"model": model, "instructions": "Be brief.",
                            "input": [{"role": "user", "content": "Say hello"}],
                            "stream": True, "store": False}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("name", "reasoning", "text", "usage"), [
    pytest.param("reasoning_summary.sse",
                 "**Comparing numbers**\n\nThe user asks whether 9.11 is larger than 9.9."
                 "\n\n**Answering**\n\n0.90 > 0.11, so 9.9 is larger.",
                 "9.9 is larger.", Usage(24, 180), id="summary"),
    pytest.param("reasoning_text.sse", "The user greets me; a short greeting back.",
                 "Hi!", Usage(15, 22), id="raw-reasoning"),
])
def test_reasoning_comes_before_the_answer(provider, fake_openai, split, name, reasoning,
                                           text, usage):
    events = wire.replay(provider, fake_openai, name, split)
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(isinstance(e, ReasoningDelta) for e in events[:first_text])
    assert "".join(e.text for e in events[:first_text]) == reasoning
    assert texts(events) == text
    assert events[-2:] == [usage, Finish("stop")]


@pytest.mark.parametrize("split", SPLITS)
def test_a_function_call_is_emitted_once_with_its_call_id_and_whole_arguments(
        provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "function_call.sse", split)
    assert events == [ToolCall("call_Qm3vXr8LkT2pNw7sYb4Jd9Fh", "get_weather",
                               '{"city":"München","unit":"celsius"}'),
                      Usage(64, 19), Finish("tool_calls")]


@pytest.mark.parametrize("split", SPLITS)
def test_parallel_interleaved_calls_keep_their_own_arguments(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "parallel_calls.sse", split)
    assert events == [
        ToolCall("call_Z9y8X7w6V5u4T3s2R1q0P9o8", "get_weather", '{"city":"Tōkyō"}'),
        ToolCall("call_A1b2C3d4E5f6G7h8I9j0K1l2", "get_weather", '{"city":"Paris"}'),
        Usage(70, 36), Finish("tool_calls")]


@pytest.mark.parametrize("split", SPLITS)
def test_running_out_of_output_tokens_finishes_with_length(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "incomplete_length.sse", split)
    assert events == [TextDelta("Once upon"), TextDelta(" a time, in"),
                      Usage(18, 8), Finish("length")]


@pytest.mark.parametrize("split", SPLITS)
def test_a_content_filter_stop_is_an_error_after_the_text_so_far(provider, fake_openai, split):
    received, error = wire.replay_until_error(provider, fake_openai,
                                              "incomplete_content_filter.sse", split,
                                              ContentFilterError)
    assert received == [TextDelta("Here is how"), TextDelta(" you"), Usage(30, 4)]
    assert error.code == "content_filter"


@pytest.mark.parametrize("split", SPLITS)
def test_a_failed_response_raises_its_mapped_error(provider, fake_openai, split):
    received, error = wire.replay_until_error(provider, fake_openai, "failed_server_error.sse",
                                              split, UpstreamServerError)
    assert received == []
    assert "The model produced invalid content. Please retry your request." in error.message
    assert error.retryable


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("name", "error_class", "message"), [
    pytest.param("error_event.sse", RateLimitError,
                 "Rate limit reached for gpt-4.1-mini on tokens per min", id="documented"),
    pytest.param("error_event_nested.sse", UpstreamServerError,
                 "An error occurred while processing your request.", id="nested"),
])
def test_an_error_event_mid_stream_raises_after_the_text_so_far(provider, fake_openai, split,
                                                                name, error_class, message):
    received, error = wire.replay_until_error(provider, fake_openai, name, split, error_class)
    assert received == [TextDelta("Partial "), TextDelta("answ")]
    assert message in error.message
    assert error.retryable


@pytest.mark.parametrize("split", SPLITS)
def test_a_body_that_ends_without_a_terminal_event_is_incomplete(provider, fake_openai, split):
    received, error = wire.replay_until_error(provider, fake_openai, "truncated.sse", split,
                                              IncompleteStreamError)
    assert received == [TextDelta("This answer "), TextDelta("is cut")]
    assert error.retryable


@pytest.mark.parametrize("split", SPLITS)
def test_crlf_line_endings_and_keepalive_comments(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "crlf_keepalive.sse", split)
    assert events == [TextDelta("Line one\nline"), TextDelta(" two "), TextDelta("ends here."),
                      Usage(19, 7), Finish("stop")]


@pytest.mark.parametrize(("body", "complaint"), [
    pytest.param(b"event: response.created\ndata: {\"type\": \"response.cre\n\n", "not JSON",
                 id="not-json"),
    pytest.param(b"event: response.output_text.delta\ndata: {\"delta\": \"\xff\xfe\"}\n\n",
                 "not UTF-8", id="not-utf8"),
])
def test_a_body_that_is_not_the_format_is_a_stream_error(provider, fake_openai, body,
                                                         complaint):
    model = wire.script(fake_openai, body)
    with pytest.raises(UpstreamStreamError, match=complaint):
        wire.collect(provider, model)


def test_rate_limit_status_carries_retry_after(provider, fake_openai):
    body = (b'{"error": {"message": "Rate limit reached for requests", '
            b'"type": "requests", "param": null, "code": "rate_limit_exceeded"}}')
    model = wire.script(fake_openai, body, status=429, content_type="application/json",
                        headers={"Retry-After": "3"})
    with pytest.raises(RateLimitError, match="Rate limit reached for requests") as caught:
        provider.stream(wire.ask(model))
    assert caught.value.status == 429
    assert caught.value.retry_after == 3.0


def test_the_request_maps_history_tools_and_limits(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.sse"))
    paris = ToolCall("call_A1", "get_weather", '{"city":"Paris"}')
    tokyo = ToolCall("call_B2", "get_weather", '{"city":"Tokyo"}')
    request = ChatRequest(model=model, max_tokens=256, temperature=0.2, tools=(WEATHER,),
                          messages=(
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather in Paris and Tokyo?"),
        ChatMessage("assistant", "Checking both.", tool_calls=(paris, tokyo)),
        ChatMessage("tool", '{"temp": 18}', tool_call_id="call_A1", name="get_weather"),
        ChatMessage("tool", '{"temp": 24}', tool_call_id="call_B2", name="get_weather"),
        ChatMessage("assistant", "", tool_calls=(paris,)),
        ChatMessage("system", "Answer in French."),
    ))
    assert texts(list(provider.stream(request))) == "Grüße, 世界 👋🏽"
    assert fake_openai.requests[model][0]["json"] == {
        "model": model,
        "instructions": "Be brief.\n\nAnswer in French.",
        "input": [
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {"role": "assistant", "content": "Checking both."},
            {"type": "function_call", "call_id": "call_A1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "call_B2", "name": "get_weather",
             "arguments": '{"city":"Tokyo"}'},
            {"type": "function_call_output", "call_id": "call_A1", "output": '{"temp": 18}'},
            {"type": "function_call_output", "call_id": "call_B2", "output": '{"temp": 24}'},
            {"type": "function_call", "call_id": "call_A1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
        ],
        "tools": [{"type": "function", "name": "get_weather",
                   "description": "Current weather for a city.",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                  "required": ["city"]},
                   "strict": False}],
        "max_output_tokens": 256,
        "temperature": 0.2,
        "stream": True,
        "store": False,
    }


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param("completion.json", Completion(
        text="Grüße! Ich sehe nach, wie das Wetter in 世界 ist 👋🏽",
        reasoning="**Checking the weather**\n\nA tool call gives live data.",
        finish_reason="tool_calls", usage=Usage(58, 96),
        tool_calls=(ToolCall("call_Hk7Tn2Wq9Xc4Vb6Ms1Lp8Rz3", "get_weather",
                             '{"city":"München"}'),)), id="text-reasoning-call"),
    pytest.param("completion_incomplete.json", Completion(
        text="Once upon a time, in", finish_reason="length", usage=Usage(18, 8)),
        id="max-output-tokens"),
])
def test_non_streaming_completion(provider, fake_openai, name, expected):
    model = wire.script(fake_openai, wire.fixture(name), content_type="application/json",
                        chunk_size=5)
    assert provider.complete(wire.ask(model)) == expected
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/v1/responses"
    assert sent["json"]["stream"] is False
    assert sent["json"]["store"] is False


@pytest.mark.parametrize("split", SPLITS)
def test_a_streamed_refusal_is_a_withheld_answer_that_says_why(provider, fake_openai, split):
    received, error = wire.replay_until_error(provider, fake_openai, "refusal.sse", split,
                                              ContentFilterError)
    assert texts(received) == ""
    assert error.code == "content_filter"
    assert "I'm sorry, but I can't help with that." in error.message


def test_a_refusal_without_its_done_event_is_still_a_refusal(provider, fake_openai):
    body = b"\n\n".join(event for event in wire.fixture("refusal.sse").split(b"\n\n")
                        if b"event: response.refusal.done" not in event)
    model = wire.script(fake_openai, body)
    _, error = wire.until_error(provider, model, ContentFilterError)
    assert "I'm sorry, but I can't help with that." in error.message


def test_a_refusal_in_a_whole_response_is_a_withheld_answer(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("completion_refusal.json"),
                        content_type="application/json")
    with pytest.raises(ContentFilterError, match="I'm sorry, but I can't help with that."):
        provider.complete(wire.ask(model))
