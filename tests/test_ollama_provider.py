"""The ollama provider rebuilds exactly what the model sent, from awkwardly split NDJSON."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import pytest

from services.providers.base import (ChatMessage, ChatRequest, Completion, Finish,
                                     ReasoningDelta, TextDelta, ToolCall, ToolSpec, Usage)
from services.providers.errors import (IncompleteStreamError, NotFoundError,
                                       UpstreamStreamError)
from services.providers.http import pooled_session
from services.providers.ollama import LineSplitter, OllamaProvider

from .provider_replay import GENERATED_ID, SPLITS, Replayer, texts

wire = Replayer("ollama", "ollama-case", content_type="application/x-ndjson", system=None)


@pytest.fixture
def provider(fake_openai):
    return OllamaProvider(base_url=fake_openai.url, session=pooled_session(),
                          connect_timeout=2, read_timeout=2)


@pytest.mark.parametrize("split", SPLITS)
def test_text_usage_and_finish_are_rebuilt(provider, fake_openai, split):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.ndjson"), **split)
    events = wire.collect(provider, model)
    assert texts(events) == "Grüße, 世界 👋🏽"
    assert events[-2:] == [Usage(26, 5), Finish("stop")]
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/api/chat"
    assert sent["json"]["stream"] is True
    assert "Authorization" not in sent["headers"]


@pytest.mark.parametrize("split", SPLITS)
def test_thinking_is_reasoning_and_content_is_text(provider, fake_openai, split):
    assert wire.replay(provider, fake_openai, "thinking.ndjson", split) == [
        ReasoningDelta("The user wants"), ReasoningDelta(" a greeting."),
        TextDelta("Hallo"), TextDelta(" zusammen!"), Usage(31, 42), Finish("stop")]


@pytest.mark.parametrize("split", SPLITS)
def test_a_tool_call_with_object_arguments(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "tool_call.ndjson", split)
    assert GENERATED_ID.fullmatch(events[0].id)
    assert events == [ToolCall(events[0].id, "get_weather", json.dumps({"city": "Paris"})),
                      Usage(187, 21), Finish("tool_calls")]
    assert json.loads(events[0].arguments) == {"city": "Paris"}


def test_calls_without_ids_get_ids_no_other_round_has(provider, fake_openai):
    """Ollama numbers nothing: ids are Sluice's, and a thread's rounds must not share them."""
    rounds = [wire.replay(provider, fake_openai, "two_tool_calls_one_line.ndjson", {})
              for _ in range(2)]
    ids = [e.id for events in rounds for e in events if isinstance(e, ToolCall)]
    assert len(ids) == 4 and len(set(ids)) == 4


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize(("body", "ids", "text"), [
    ("two_tool_calls_one_line", None, ""),
    ("two_tool_calls_two_lines", ("call_kq3vx9fd", "call_p0w7m2ae"), "Let me check both."),
])
def test_two_tool_calls(provider, fake_openai, split, body, ids, text):
    events = wire.replay(provider, fake_openai, f"{body}.ndjson", split)
    assert texts(events) == text
    if ids is None:  # sent without ids: each gets a fresh one
        ids = [e.id for e in events if isinstance(e, ToolCall)]
        assert len(set(ids)) == 2 and all(GENERATED_ID.fullmatch(i) for i in ids)
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall(ids[0], "get_weather", json.dumps({"city": "Zürich", "unit": "celsius"}, ensure_ascii=False)),
        ToolCall(ids[1], "get_time", json.dumps({"timezone": "Asia/Tokyo"}))]
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize("split", SPLITS)
def test_crlf_blank_lines_and_length(provider, fake_openai, split):
    events = wire.replay(provider, fake_openai, "length_crlf_blank_lines.ndjson", split)
    assert texts(events) == "Line one\nline two ends"
    assert events[-2:] == [Usage(19, 4), Finish("length")]


@pytest.mark.parametrize(("done_reason", "finish"), [
    ("stop", "stop"), ("length", "length"), ("load", "stop"), ("unload", "stop"), (None, "stop"),
])
def test_done_reasons(provider, fake_openai, done_reason, finish):
    last = {"model": "llama3.2", "created_at": "2024-11-18T10:15:02.171988Z",
            "message": {"role": "assistant", "content": "ok"}, "done": True,
            "done_reason": done_reason, "prompt_eval_count": 3, "eval_count": 1}
    model = wire.script(fake_openai, json.dumps(last).encode() + b"\n")
    assert wire.collect(provider, model) == [TextDelta("ok"), Usage(3, 1), Finish(finish)]


@pytest.mark.parametrize("split", SPLITS)
def test_an_error_line_after_content_is_an_error(provider, fake_openai, split):
    received, _ = wire.replay_until_error(
        provider, fake_openai, "error_mid_stream.ndjson", split, UpstreamStreamError,
        match="error was encountered while running the model: unexpected EOF")
    assert received == [TextDelta("Partial"), TextDelta(" an")]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("cut", [0, 25], ids=["after-a-line", "mid-line"])
def test_a_body_that_ends_without_done_is_incomplete(provider, fake_openai, split, cut):
    body = wire.fixture("truncated.ndjson")
    model = wire.script(fake_openai, body[:len(body) - cut], **split)
    received, error = wire.until_error(provider, model, IncompleteStreamError)
    assert texts(received) == ("This answer is cut off" if not cut else "This answer")
    assert error.retryable


@pytest.mark.parametrize("split", SPLITS)
def test_a_last_line_without_its_newline_still_counts(provider, fake_openai, split):
    body = wire.fixture("text_with_usage.ndjson").rstrip(b"\n")
    events = wire.collect(provider, wire.script(fake_openai, body, **split))
    assert texts(events) == "Grüße, 世界 👋🏽"
    assert events[-2:] == [Usage(26, 5), Finish("stop")]


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>\n", b"[1, 2]\n"])
def test_a_line_that_is_not_a_json_object_is_an_error(provider, fake_openai, body):
    model = wire.script(fake_openai, wire.fixture("truncated.ndjson") + body)
    with pytest.raises(UpstreamStreamError, match="ollama sent"):
        wire.collect(provider, model)


def test_a_missing_model_is_not_found(provider, fake_openai):
    model = wire.script(fake_openai, b'{"error":"model \'x\' not found"}', status=404,
                        content_type="application/json")
    with pytest.raises(NotFoundError, match="model 'x' not found") as caught:
        provider.stream(wire.ask(model))
    assert caught.value.status == 404
    assert fake_openai.requests[model][0]["path"] == "/api/chat"


def test_the_request_carries_history_tools_and_options(fake_openai):
    provider = OllamaProvider(base_url=fake_openai.url + "/", session=pooled_session(),
                              connect_timeout=2, read_timeout=2, api_key="proxy-key")
    model = wire.script(fake_openai, wire.fixture("text_with_usage.ndjson"))
    weather = ToolCall("call_0", "get_weather", '{"city": "Paris"}')
    clock = ToolCall("call_1", "get_time", '{"timezone": "Europe/Paris"}')
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    list(provider.stream(ChatRequest(
        model=model, max_tokens=64, temperature=0.2,
        tools=(ToolSpec("get_weather", "Current weather in a city", schema),),
        messages=(ChatMessage("system", "Be brief."),
                  ChatMessage("user", "Weather and time in Paris?"),
                  ChatMessage("assistant", "", tool_calls=(weather, clock)),
                  ChatMessage("tool", "18°C", tool_call_id="call_0", name="get_weather"),
                  ChatMessage("tool", "14:05", tool_call_id="call_1")))))
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/api/chat"
    assert sent["headers"]["Authorization"] == "Bearer proxy-key"
    assert sent["json"] == {
        "model": model, "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {"timezone": "Europe/Paris"}}}]},
            {"role": "tool", "content": "18°C", "tool_name": "get_weather"},
            {"role": "tool", "content": "14:05", "tool_name": "get_time"}],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather in a city",
            "parameters": schema}}],
        "options": {"temperature": 0.2, "num_predict": 64},
    }


def test_a_plain_request_sends_no_tools_and_no_options(provider, fake_openai):
    model = wire.script(fake_openai, wire.fixture("text_with_usage.ndjson"))
    wire.collect(provider, model)
    assert fake_openai.requests[model][0]["json"] == {
        "model": model, "stream": True,
        "messages": [{"role": "user", "content": "Say hello"}]}


@pytest.mark.parametrize(("body", "expected"), [
    ("completion.json", Completion(text="Grüße, 世界 👋🏽", finish_reason="stop",
                                   usage=Usage(34, 12), reasoning="A short, friendly greeting.")),
    ("completion_tool_call.json", Completion(
        text="", finish_reason="tool_calls", usage=Usage(122, 33),
        tool_calls=(ToolCall("call_0", "get_weather", json.dumps({"city": "Paris"})),))),
])
def test_non_streaming_completion(provider, fake_openai, body, expected):
    model = wire.script(fake_openai, wire.fixture(body), content_type="application/json",
                        chunk_size=5)
    completion = provider.complete(wire.ask(model))
    ids = [call.id for call in completion.tool_calls]
    assert all(GENERATED_ID.fullmatch(i) for i in ids)
    assert completion == replace(expected, tool_calls=tuple(
        replace(call, id=i) for call, i in zip(expected.tool_calls, ids)))
    sent = fake_openai.requests[model][0]
    assert sent["path"] == "/api/chat"
    assert sent["json"]["stream"] is False


def test_an_error_body_from_complete_is_an_error(provider, fake_openai):
    model = wire.script(fake_openai, b'{"error":"unexpected server status: llm server loading"}',
                        content_type="application/json")
    with pytest.raises(UpstreamStreamError, match="llm server loading"):
        provider.complete(wire.ask(model))


def test_interrupt_from_another_thread_cuts_a_silent_upstream(fake_openai):
    provider = OllamaProvider(base_url=fake_openai.url, session=pooled_session(),
                              connect_timeout=2, read_timeout=60)
    first_line = wire.fixture("text_with_usage.ndjson").split(b"\n")[0] + b"\n"
    model = wire.script(fake_openai, first_line, then_hang=60)
    stream = provider.stream(wire.ask(model))
    events = iter(stream)
    assert next(events) == TextDelta("Grü")
    threading.Timer(0.2, stream.interrupt).start()
    started = time.monotonic()
    assert list(events) == []  # ends quietly: it was stopped on purpose
    assert time.monotonic() - started < 10  # not the 60 s the upstream would stay silent
    stream.close()
    assert fake_openai.hung_up[model].wait(5)


# The line splitter on its own.

SPLITTER_BODY = '{"a":"Grüße"}\r\n\n{"b":"世界 👋🏽"}\n  \r\n{"c":1}\n'.encode()
SPLITTER_LINES = ['{"a":"Grüße"}', '{"b":"世界 👋🏽"}', '{"c":1}']


def split_lines(pieces: list[bytes]) -> list[str]:
    splitter = LineSplitter()
    lines = [line for piece in pieces for line in splitter.feed(piece)]
    last = splitter.finish()
    return lines + [last] if last else lines


@pytest.mark.parametrize("offset", range(len(SPLITTER_BODY) + 1))
def test_splitter_gives_whole_lines_wherever_the_body_is_cut(offset):
    pieces = [SPLITTER_BODY[:offset], SPLITTER_BODY[offset:]]
    assert split_lines(pieces) == SPLITTER_LINES


def test_splitter_byte_by_byte():
    pieces = [SPLITTER_BODY[i:i + 1] for i in range(len(SPLITTER_BODY))]
    assert split_lines(pieces) == SPLITTER_LINES


def test_splitter_holds_a_line_until_its_newline():
    splitter = LineSplitter()
    assert splitter.feed('{"a":"Gr'.encode() + "ü".encode()[:1]) == []
    assert splitter.feed("ü".encode()[1:] + b'"}') == []
    assert splitter.feed(b"\n{") == ['{"a":"Grü"}']
    assert splitter.finish() == "{"
    assert splitter.finish() == ""


def test_splitter_rejects_a_complete_line_that_is_not_utf8():
    with pytest.raises(UnicodeDecodeError):
        LineSplitter().feed(b'{"a":"\xff"}\n')
