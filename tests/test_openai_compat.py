"""The OpenAI-compatible API through Flask's test client: what a request may ask for,
what reaches the provider, the shape of every error under /v1, and that nothing is
stored. (tests/test_openai_compat_live.py drives it with the official SDK.)"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.storage import Message, Thread, database

from .fake_upstream import Reply, fixture
from .test_providers_live import WEATHER_TOOLS

ASK = [{"role": "user", "content": "Say hello"}]
OPENAI_ERROR_KEYS = ["message", "type", "param", "code"]


def complete(client, **body):
    return client.post("/v1/chat/completions", json={"model": "demo/echo", "messages": ASK,
                                                     **body})


def assert_openai_error(response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert list(error) == OPENAI_ERROR_KEYS
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    assert error["message"]  # a sentence for a human


TEXT_PART = {"type": "text", "text": "hi"}


@pytest.mark.parametrize(("body", "code", "param"), [
    ({"model": None}, "missing_required_parameter", "model"),
    ({"model": 7}, "invalid_type", "model"),
    ({"messages": None}, "missing_required_parameter", "messages"),
    ({"messages": []}, "invalid_value", "messages"),
    ({"messages": [{"role": "bot", "content": "hi"}]}, "invalid_value", "messages[0].role"),
    # Found by the schema fuzzer: a role that is an object was a 500.
    ({"messages": [{"role": {}, "content": "hi"}]}, "invalid_value", "messages[0].role"),
    ({"messages": [{"role": "function", "name": "f", "content": "{}"}]}, "invalid_value",
     "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "missing_required_parameter", "messages[0].content"),
    ({"messages": [{"role": "user", "content": [TEXT_PART, {
        "type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]},
     "unsupported_value", "messages[0].content[1].type"),
    ({"messages": [{"role": "user", "content": [{
        "type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
     "unsupported_value", "messages[0].content[0].type"),
    ({"messages": [{"role": "tool", "content": "42"}]}, "missing_required_parameter",
     "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {}}}]}]},
     "invalid_type", "messages[0].tool_calls[0].function.arguments"),
    ({"n": 2}, "unsupported_value", "n"),
    ({"logprobs": True}, "unsupported_value", "logprobs"),
    ({"top_logprobs": 3}, "unsupported_value", "top_logprobs"),
    ({"response_format": {"type": "json_object"}}, "unsupported_value", "response_format"),
    ({"stop": ["\n"]}, "unsupported_parameter", "stop"),
    ({"modalities": ["text", "audio"]}, "unsupported_value", "modalities"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "unsupported_parameter", "audio"),
    ({"functions": [{"name": "f"}]}, "unsupported_parameter", "functions"),
    ({"stream": "yes"}, "invalid_type", "stream"),
    ({"stream_options": {"include_usage": True}}, "invalid_value", "stream_options"),
    ({"stream": True, "stream_options": {"include_usage": "yes"}}, "invalid_type",
     "stream_options.include_usage"),
    ({"max_tokens": 0}, "invalid_value", "max_tokens"),
    ({"max_completion_tokens": "many"}, "invalid_type", "max_completion_tokens"),
    ({"temperature": 3}, "invalid_value", "temperature"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "unsupported_value",
     "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "invalid_value",
     "tools"),
    ({"tool_choice": "required", "tools": WEATHER_TOOLS}, "unsupported_value", "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "get_time"}},
      "tools": WEATHER_TOOLS}, "unsupported_value", "tool_choice"),
])
def test_what_sluice_cannot_honour_is_a_400_that_names_the_field(client, body, code, param):
    assert_openai_error(complete(client, **body), 400, code, param)


def test_an_unknown_model_is_a_404_like_openais(client):
    for model in ("demo/nonexistent", "nobody/model", "no-slash"):
        assert_openai_error(complete(client, model=model), 404, "model_not_found", "model")


def test_harmless_fields_are_accepted_and_ignored(client):
    response = complete(client, user="u-1", seed=7, top_p=0.5, presence_penalty=0,
                        frequency_penalty=0, metadata={"a": "b"}, store=False,
                        parallel_tool_calls=True, n=1, logprobs=False, stop=None,
                        response_format={"type": "text"}, tool_choice="auto",
                        some_extension={"x": 1})
    assert response.status_code == 200
    assert response.get_json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("method", "path", "options", "status", "code"), [
    ("GET", "/v1/nothing-here", {}, 404, "not_found"),
    ("GET", "/v1/chat/completions", {}, 405, "method_not_allowed"),
    ("POST", "/v1/chat/completions", {"data": "hi", "content_type": "text/plain"}, 415,
     "unsupported_media_type"),
    ("POST", "/v1/chat/completions", {"data": "{not json", "content_type": "application/json"},
     400, "invalid_json"),
    ("POST", "/v1/chat/completions", {"data": "[1]", "content_type": "application/json"},
     400, "invalid_json"),
    ("POST", "/v1/chat/completions", {"json": {"model": "demo/echo", "messages": [
        {"role": "user", "content": "a\u0000b"}]}}, 400, "invalid_text"),
    ("POST", "/v1/chat/completions", {"data": '{"messages": ' + "[" * 100 + "]" * 100 + "}",
                                      "content_type": "application/json"},
     400, "too_deeply_nested"),
    ("POST", "/v1/chat/completions", {"data": "{}" + " " * 2_000_000,
                                      "content_type": "application/json"},
     413, "payload_too_large"),
])
def test_every_error_under_v1_has_openais_shape(client, method, path, options, status, code):
    assert_openai_error(client.open(path, method=method, **options), status, code)


def test_the_rest_of_the_api_keeps_its_own_error_shape(client):
    error = client.get("/api/v1/nothing-here").get_json()["error"]
    assert list(error) == ["code", "message"]


def test_a_server_that_is_shutting_down_takes_no_completions(app, client):
    from services.streaming import streaming
    streaming(app).draining.set()
    assert_openai_error(complete(client), 503, "shutting_down")


@pytest.mark.parametrize("stream", [False, True])
def test_a_completion_stores_nothing(app, client, stream):
    response = complete(client, stream=stream)
    assert response.status_code == 200
    response.get_data()  # the whole answer
    with database(app).transaction() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Thread)) == 0


def test_the_request_reaches_the_provider_as_the_client_wrote_it(client, fake_openai):
    fake_openai.script("v1-fields", Reply(fixture("openai/text_with_usage.sse")))
    response = complete(client, model="openai/v1-fields", temperature=0.25,
                        max_completion_tokens=64, tools=WEATHER_TOOLS, messages=[
                            {"role": "developer", "content": "Be terse."},
                            {"role": "user", "content": [{"type": "text", "text": "one"},
                                                         {"type": "text", "text": "two"}]},
                            {"role": "assistant", "content": None, "tool_calls": [{
                                "id": "call_1", "type": "function",
                                "function": {"name": "get_time", "arguments": "{}"}}]},
                            {"role": "tool", "tool_call_id": "call_1", "content": "09:41"}])
    assert response.get_json()["choices"][0]["message"]["content"] == "Héllo, 世界 👋🏽 — done."
    sent = fake_openai.requests["v1-fields"][-1]["json"]
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("v1-fields", 0.25, 64)
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather", "get_time"]
    assert [(m["role"], m.get("content")) for m in sent["messages"]] == [
        ("system", "Be terse."), ("user", "one\ntwo"), ("assistant", None), ("tool", "09:41")]
    assert sent["messages"][2]["tool_calls"][0]["id"] == "call_1"


def test_tool_choice_none_keeps_the_tools_from_the_model(client, fake_openai):
    fake_openai.script("v1-no-tools", Reply(fixture("openai/text_with_usage.sse")))
    complete(client, model="openai/v1-no-tools", tools=WEATHER_TOOLS, tool_choice="none")
    assert "tools" not in fake_openai.requests["v1-no-tools"][-1]["json"]
