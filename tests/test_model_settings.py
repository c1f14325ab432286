"""Per-model settings from the models file, and when a failing model is tried again."""
from __future__ import annotations

import pytest

from services.providers.catalog import (CatalogError, ModelSettings, RetryPolicy, Timeouts,
                                        load_models_file)
from services.providers.errors import (AuthenticationError, IncompleteStreamError,
                                       RateLimitError, UpstreamServerError)
from services.streaming.attempts import backoff_delay

from .fake_upstream import openai_text_reply

BASE = ModelSettings(id="*/*", fallbacks=("demo/echo",),
                     timeouts=Timeouts(connect=5, first_token=30, idle=60, total=300),
                     retry=RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=8))


def test_a_model_entry_overrides_only_what_it_names():
    models = load_models_file('''
        [models."openai/llama3"]
        base_url = "http://127.0.0.1:8080/v1"
        streaming = false
        temperature = 0
        max_tokens = 512
        first_token_timeout = 120
        retry_attempts = 1
        fallbacks = ["anthropic/claude-haiku", "demo/echo"]

        [models."openai/gpt-4o-mini"]
    ''', BASE)
    llama = models["openai/llama3"]
    assert (llama.provider, llama.name) == ("openai", "llama3")
    assert (llama.base_url, llama.streaming, llama.temperature, llama.max_tokens) == (
        "http://127.0.0.1:8080/v1", False, 0, 512)
    assert llama.timeouts == Timeouts(connect=5, first_token=120, idle=60, total=300)
    assert llama.retry == RetryPolicy(attempts=1, base_seconds=0.5, max_seconds=8)
    assert llama.fallbacks == ("anthropic/claude-haiku", "demo/echo")
    assert models["openai/gpt-4o-mini"] == ModelSettings(
        id="openai/gpt-4o-mini", fallbacks=BASE.fallbacks, timeouts=BASE.timeouts,
        retry=BASE.retry)


@pytest.mark.parametrize(("text", "complaint"), [
    ('[models."gpt-4o"]', "provider/model"),
    ('[models."openai/x"]\ntemprature = 1', "temprature is not a setting"),
    ('[models."openai/x"]\nstreaming = "no"', "wrong type"),
    ('[models."openai/x"]\nmax_tokens = -5', "must not be negative"),
    ('[models."openai/x"]\nfallbacks = "demo/echo"', "list of model ids"),
    ('[models."openai/x"]\ntools = "calculator"', "list of tool names"),
    ('[models."openai/x"]\nmax_rounds = 0', "at least 1"),
    ('[models."openai/x"]\nmax_tool_calls = 2.5', "wrong type"),
    ('[models."openai/x"]\nmax_tokens_field = "max_output_tokens"', "must be one of"),
    ('[model."openai/x"]', "unknown table"),
    ('[models."openai/x"\n', "not valid TOML"),
])
def test_a_bad_models_file_is_refused_with_where_and_why(text, complaint):
    with pytest.raises(CatalogError, match=complaint):
        load_models_file(text, BASE)


@pytest.mark.parametrize(("entry", "field"), [
    ("", "max_tokens"),  # the fake is not api.openai.com: the field compatible servers know
    ('max_tokens_field = "max_completion_tokens"', "max_completion_tokens"),
])
def test_the_token_limit_is_sent_in_the_field_the_model_is_set_to(make_app, fake_openai,
                                                                   tmp_path, entry, field):
    model = f"limit-in-{field}"
    models_file = tmp_path / "models.toml"
    models_file.write_text(f'[models."openai/{model}"]\nmax_tokens = 64\n{entry}\n')
    client = make_app(SLUICE_MODELS_FILE=str(models_file)).test_client()
    fake_openai.script(model, openai_text_reply("Hi"))
    thread_id = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]
    response = client.post(f"/api/v1/threads/{thread_id}/messages",
                           json={"content": "Hi", "model": f"openai/{model}"})
    assert response.status_code == 200
    sent = fake_openai.requests[model][0]["json"]
    assert sent[field] == 64
    assert not {"max_tokens", "max_completion_tokens"} - {field} & set(sent)


def test_an_app_refuses_to_start_with_a_fallback_it_cannot_serve(make_app, tmp_path):
    models_file = tmp_path / "models.toml"
    models_file.write_text('[models."demo/echo"]\nfallbacks = ["nowhere/x"]\n')
    with pytest.raises(Exception, match="no provider 'nowhere'"):
        make_app(SLUICE_MODELS_FILE=str(models_file))


POLICY = RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=8)


@pytest.mark.parametrize("attempt", [0, 1])
def test_backoff_grows_with_full_jitter_under_the_cap(attempt):
    delays = [backoff_delay(POLICY, attempt, UpstreamServerError("boom", 503))
              for _ in range(300)]
    ceiling = POLICY.base_seconds * 2 ** attempt
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread, not fixed


def test_retry_after_is_a_minimum_and_too_long_means_try_another_model():
    assert backoff_delay(POLICY, 0, RateLimitError("slow down", 429, retry_after=3)) >= 3
    assert backoff_delay(POLICY, 0, RateLimitError("slow down", 429, retry_after=60)) is None


@pytest.mark.parametrize(("error", "attempt"), [
    (AuthenticationError("bad key", 401), 0),  # not retryable
    (UpstreamServerError("boom", 500), 2),  # attempts used up
])
def test_no_retry_when_it_cannot_help(error, attempt):
    assert backoff_delay(POLICY, attempt, error) is None


def test_a_cut_off_stream_is_retryable():
    assert backoff_delay(POLICY, 0, IncompleteStreamError("cut")) is not None
