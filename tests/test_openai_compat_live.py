"""The OpenAI-compatible API through a real gunicorn + gevent server, driven by the
official `openai` SDK as users drive it, and byte for byte where the SDK would
forgive what OpenAI never sends.

The fake upstream replays each provider's recorded wire format (tests/fixtures), so
a `/v1` request goes through the real adapters and the real streaming core.
"""
from __future__ import annotations

import itertools
import json
import time

import openai
import pytest
import requests

from services.providers.base import ChatMessage, ChatRequest
from services.providers.demo import demo_answer

from .fake_upstream import Reply, fixture, sse_events_of
from .test_providers_live import (FORMATS, WEATHER_TOOLS, error_reply, recorded,
                                  same_calls, script)

_names = (f"v1-{n}" for n in itertools.count())
ASK = [{"role": "user", "content": "Say hello"}]
DEMO = pytest.param("demo", None, demo_answer(ChatRequest("echo", (ChatMessage("user",
                                                                               "Say hello"),))),
                    None, [], "stop", None, id="demo")
EVERY_FORMAT = [DEMO, *FORMATS]
COLUMNS = ("provider", "path", "text", "reasoning", "calls", "finish", "usage")


@pytest.fixture
def sdk(live_server):
    """The official client, pointed at Sluice; no retries, so each error is seen as sent."""
    with openai.OpenAI(base_url=live_server.url + "/v1", api_key="sk-anything",
                       max_retries=0, timeout=30) as client:
        yield client


def model_for(fake, provider: str, path: str | None, **options) -> str:
    """`demo/echo`, or a fresh model whose next answer is the recording `path`."""
    if provider == "demo":
        return "demo/echo"
    return script(fake, provider, next(_names), recorded(path, **options))


def calls_of(message) -> list[tuple[str, str, str]]:
    return [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]


# --- streaming --------------------------------------------------------------------

@pytest.mark.parametrize(COLUMNS, EVERY_FORMAT)
def test_every_format_streams_as_openai_chunks(sdk, fake_openai, provider, path, text,
                                               reasoning, calls, finish, usage):
    model = model_for(fake_openai, provider, path, chunk_size=7)
    with sdk.chat.completions.stream(model=model, messages=ASK,
                                     stream_options={"include_usage": True}) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    assert {(c.id[:9], c.object, c.model) for c in chunks} == {
        ("chatcmpl-", "chat.completion.chunk", model)}
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == final.choices[0].message.content == text
    streamed_reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert (streamed_reasoning or None) == reasoning
    assert same_calls(calls_of(final.choices[0].message), calls)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == finish and set(reasons[:-1]) == {None}
    last = chunks[-1]
    assert last.choices == [] and last.usage.total_tokens == (
        last.usage.prompt_tokens + last.usage.completion_tokens)
    if usage is not None:
        assert (last.usage.prompt_tokens, last.usage.completion_tokens) == usage


@pytest.mark.parametrize(("provider", "first", "second", "calls"), [
    pytest.param("openai", "openai/parallel_tool_calls.sse", "openai/text_with_usage.sse",
                 [("call_W8xq", "get_weather", '{"city": "Zürich"}'),
                  ("call_T3mz", "get_time", '{"tz": "Asia/Tokyo"}')], id="openai"),
    pytest.param("anthropic", "anthropic/parallel_tools.sse", "anthropic/text_with_usage.sse",
                 [("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city": "Paris"}'),
                  ("toolu_01B7mGzC8uVxYtR3nKqL4sWe", "get_time", '{"timezone": "Asia/Tokyo"}')],
                 id="anthropic"),
])
def test_parallel_tool_calls_round_trip_through_the_sdk(sdk, fake_openai, provider, first,
                                                        second, calls):
    name = next(_names)
    model = script(fake_openai, provider, name, recorded(first, chunk_size=5), recorded(second))
    with sdk.chat.completions.stream(model=model, messages=ASK, tools=WEATHER_TOOLS) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert calls_of(choice.message) == calls and choice.finish_reason == "tool_calls"
    sent_tools = json.dumps(fake_openai.requests[name][0]["json"])
    assert "get_weather" in sent_tools and "get_time" in sent_tools

    results = [{"role": "tool", "tool_call_id": call_id, "content": f"result of {call_id}"}
               for call_id, _, _ in calls]
    history = [*ASK, choice.message.model_dump(exclude_none=True), *results]
    answer = sdk.chat.completions.create(model=model, messages=history, tools=WEATHER_TOOLS)
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content
    sent = json.dumps(fake_openai.requests[name][1]["json"], ensure_ascii=False)
    for call_id, _, arguments in calls:
        assert call_id in sent and f"result of {call_id}" in sent


def test_a_fallback_answers_under_the_name_the_client_asked_for(sdk, fake_openai):
    fake_openai.script("primary-down", error_reply(503))
    fake_openai.script("backup-up", recorded("anthropic/text_with_usage.sse"))
    stream = sdk.chat.completions.create(model="openai/primary-down", messages=ASK, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Grüße, 世界 👋🏽"
    assert {c.model for c in chunks} == {"openai/primary-down"}
    assert len(fake_openai.requests["primary-down"]) == 3  # retried, then fell back


def test_a_model_that_cannot_stream_streams_and_caps_the_token_limit(sdk, fake_openai):
    fake_openai.script("no-stream", Reply(fixture("openai/completion.json"),
                                          content_type="application/json"))
    chunks = list(sdk.chat.completions.create(model="openai/no-stream", messages=ASK,
                                              stream=True, max_tokens=500, temperature=0.9))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Héllo, 世界 👋🏽"
    sent = fake_openai.requests["no-stream"][-1]["json"]
    # The request's temperature wins; its token limit is capped by the model's (99).
    assert (sent["stream"], sent["temperature"], sent["max_tokens"]) == (False, 0.9, 99)


# --- without streaming ------------------------------------------------------------

@pytest.mark.parametrize(COLUMNS, EVERY_FORMAT)
def test_every_format_as_one_chat_completion(sdk, fake_openai, provider, path, text, reasoning,
                                             calls, finish, usage):
    model = model_for(fake_openai, provider, path, chunk_size=3)
    completion = sdk.chat.completions.create(model=model, messages=ASK)
    assert (completion.object, completion.model, completion.id[:9]) == (
        "chat.completion", model, "chatcmpl-")
    choice = completion.choices[0]
    assert (choice.index, choice.finish_reason, choice.message.role) == (0, finish, "assistant")
    assert choice.message.content == (text or (None if calls else ""))
    assert getattr(choice.message, "reasoning_content", None) == reasoning
    assert same_calls(calls_of(choice.message), calls)
    if usage is not None:
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == usage


# --- errors -----------------------------------------------------------------------

def test_an_unknown_model_is_not_found(sdk):
    for stream in (False, True):
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.chat.completions.create(model="demo/nonexistent", messages=ASK, stream=stream)
        assert (caught.value.code, caught.value.param) == ("model_not_found", "model")


def test_a_request_sluice_cannot_honour_is_a_bad_request(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="demo/echo", messages=ASK, n=2)
    error = caught.value
    assert (error.code, error.param, error.type) == (
        "unsupported_value", "n", "invalid_request_error")


MID_STREAM_FAILURES = [
    pytest.param("openai", "openai/error_then_done.sse", "upstream_error", id="openai"),
    pytest.param("anthropic", "anthropic/overloaded_midstream.sse", "overloaded",
                 id="anthropic"),
    pytest.param("ollama", "ollama/error_mid_stream.ndjson", "upstream_error", id="ollama"),
]


@pytest.mark.parametrize(("provider", "path", "code"), MID_STREAM_FAILURES)
def test_a_failure_mid_stream_is_raised_by_the_sdk_after_the_text(sdk, fake_openai, provider,
                                                                  path, code):
    model = model_for(fake_openai, provider, path, chunk_size=5)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in sdk.chat.completions.create(model=model, messages=ASK, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Partial an"
    assert not isinstance(caught.value, openai.APIStatusError)  # in the stream, status 200
    assert caught.value.code == code


@pytest.mark.parametrize(("provider", "path", "code"), MID_STREAM_FAILURES)
def test_a_failure_without_streaming_is_an_error_status(sdk, fake_openai, provider, path, code):
    model = model_for(fake_openai, provider, path)
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model=model, messages=ASK)
    assert caught.value.code == code and caught.value.status_code in (502, 503)


@pytest.mark.parametrize("stream", [True, False])
def test_a_content_filter_is_a_finish_reason_as_on_openai(sdk, fake_openai, stream):
    model = model_for(fake_openai, "openai", "openai/content_filter.sse")
    if stream:
        chunks = list(sdk.chat.completions.create(model=model, messages=ASK, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        reason = chunks[-1].choices[0].finish_reason
    else:
        choice = sdk.chat.completions.create(model=model, messages=ASK).choices[0]
        text, reason = choice.message.content, choice.finish_reason
    assert (text, reason) == ("Here is how to", "content_filter")


# --- a client that goes away --------------------------------------------------------

def test_a_client_that_hangs_up_cancels_the_answer(sdk, fake_openai):
    name = next(_names)
    first_two = b"".join(sse_events_of(fixture("openai/text_with_usage.sse"))[:2])
    # Two events, then silence with the connection open, far longer than the test waits.
    fake_openai.script(name, Reply(first_two, then_hang=30))
    stream = sdk.chat.completions.create(model=f"openai/{name}", messages=ASK, stream=True)
    assert next(stream).choices[0].delta.role == "assistant"
    assert next(stream).choices[0].delta.content == "Héllo"
    hung_up_at = time.monotonic()
    stream.close()
    # Only a ping's failed write tells the server (every second here); then the run is
    # cancelled and cuts its upstream, well before the idle timeout (10 s) would.
    assert fake_openai.hung_up[name].wait(6)
    assert time.monotonic() - hung_up_at < 6
    assert not fake_openai.finished[name].is_set()


# --- the wire, byte for byte ----------------------------------------------------------

CHUNK_KEYS = ["id", "object", "created", "model", "system_fingerprint", "choices"]
CHOICE_KEYS = ["index", "delta", "logprobs", "finish_reason"]


def data_lines(body: str) -> list[str]:
    """The body's `data` values, checked to be framed as OpenAI frames them: each frame
    one `data:` line, or a `: ping` comment; never an `event:` or `id:` line."""
    assert body.endswith("\n\n")
    frames = body[:-2].split("\n\n")
    for frame in frames:
        assert "\n" not in frame and (frame.startswith("data: ") or frame == ": ping"), frame
    return [frame[len("data: "):] for frame in frames if frame.startswith("data: ")]


@pytest.mark.parametrize("include_usage", [True, False])
def test_the_stream_is_framed_as_openai_frames_it(live_server, fake_openai, include_usage):
    name = next(_names)
    events = sse_events_of(fixture("openai/text_with_usage.sse"))
    # A pause longer than the ping interval (1 s) between the first event and the rest.
    fake_openai.script(name, Reply(split_at=[events[0], b"".join(events[1:])], delay=2.5))
    body = {"model": f"openai/{name}", "messages": ASK, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    response = requests.post(live_server.url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200
    assert (response.headers["Content-Type"], response.headers["Cache-Control"],
            response.headers["X-Accel-Buffering"]) == ("text/event-stream", "no-cache", "no")
    raw = response.content.decode()
    assert ": ping\n\n" in raw  # the pause was filled with comments, not data
    *chunks, done = data_lines(raw)
    assert done == "[DONE]"
    chunks = [json.loads(chunk) for chunk in chunks]
    keys = CHUNK_KEYS + ["usage"] if include_usage else CHUNK_KEYS
    assert all(list(chunk) == keys for chunk in chunks)
    with_choice = [chunk for chunk in chunks if chunk["choices"]]
    assert all(list(chunk["choices"][0]) == CHOICE_KEYS for chunk in with_choice)
    assert with_choice[0]["choices"][0]["delta"] == {"role": "assistant", "content": "",
                                                     "refusal": None}
    assert with_choice[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                             "finish_reason": "stop"}
    if include_usage:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
            "prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26}
        assert all(chunk["usage"] is None for chunk in with_choice)
    else:
        assert chunks[-1] is with_choice[-1]


def test_an_error_in_the_stream_is_one_error_frame_then_done(live_server, fake_openai):
    model = model_for(fake_openai, "openai", "openai/error_then_done.sse")
    response = requests.post(live_server.url + "/v1/chat/completions", timeout=30, json={
        "model": model, "messages": ASK, "stream": True})
    *chunks, error, done = data_lines(response.content.decode())
    assert done == "[DONE]"
    assert json.loads(error) == {"error": {
        "message": "openai reported an error mid-stream: The model ran out of KV cache blocks.",
        "type": "server_error", "param": None, "code": "upstream_error"}}
    assert all("choices" in json.loads(chunk) for chunk in chunks)


# --- models -----------------------------------------------------------------------

def test_models_are_the_ones_the_api_lists(sdk, live_server):
    listed = live_server.api("GET", "/api/v1/models").json()["models"]
    models = list(sdk.models.list())
    assert [(m.id, m.object, m.owned_by) for m in models] == [
        (m["id"], "model", m["provider"]) for m in listed]
    assert "demo/echo" in {m.id for m in models}
    assert all(isinstance(m.created, int) for m in models)
