"""`/metrics` through Flask's test client (one process): what each answer records,
who may read it, and recording that fails without failing anything else."""
from __future__ import annotations

import json
import logging
import time

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from services.config import ConfigError, settings_from_env
from services.metrics import count_rate_limited, recorder

from .fake_upstream import Reply
from .prometheus_text import Scrape, read_metrics
from .sse_client import read_test_response

STREAM_ROUTE = "/api/v1/threads/<id:thread_id>/messages/stream"


def scrape(client, **kwargs) -> Scrape:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return read_metrics(response.get_data(as_text=True))


def answer(client, **fields) -> list:
    thread_id = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream",
                           json={"content": "count me", **fields})
    assert response.status_code == 200
    return read_test_response(response)


def settled(client) -> Scrape:
    """A scrape once no answer is being produced (a producer ends just after `done`)."""
    deadline = time.monotonic() + 10
    while (metrics := scrape(client)).value("sluice_active_streams") and (
            time.monotonic() < deadline):
        time.sleep(0.02)
    return metrics


def test_an_answer_is_counted_and_timed_by_its_run(client):
    events = answer(client)
    done = events[-1].data
    metrics = settled(client)
    model = {"provider": "demo", "model": "demo/echo"}
    assert metrics.value("sluice_answers_total", **model, outcome="complete") == 1
    assert metrics.value("sluice_time_to_first_token_seconds_count", **model) == 1
    assert metrics.value("sluice_time_to_first_token_seconds_sum", **model) == pytest.approx(
        done["metrics"]["ttft_ms"] / 1000, abs=0.002)
    assert metrics.value("sluice_answer_duration_seconds_sum", **model) == pytest.approx(
        done["metrics"]["duration_ms"] / 1000)
    for kind in ("input", "output"):
        assert metrics.value("sluice_tokens_total", **model, type=kind) == (
            done["usage"][f"{kind}_tokens"]) > 0
    assert metrics.value("sluice_http_requests_total", route=STREAM_ROUTE, method="POST",
                         status="200") == 1
    assert metrics.value("sluice_active_streams") == 0
    assert all(name.startswith("sluice_") for name in metrics.families)


def test_each_failed_attempt_is_a_provider_error_and_the_answer_one_error(make_app, fake_openai):
    client = make_app(SLUICE_RETRY_BASE_SECONDS=0.01).test_client()
    failure = Reply(json.dumps({"error": {"message": "down"}}).encode(), status=503,
                    content_type="application/json")
    fake_openai.script("metrics-down", failure, failure, failure)
    events = answer(client, model="openai/metrics-down")
    assert events[-1].data["status"] == "error"
    metrics = settled(client)
    # A model that is not in the configured catalog: its own provider, the shared model label.
    model = {"provider": "openai", "model": "other"}
    assert metrics.value("sluice_provider_errors_total", **model, code="overloaded") == 3
    assert metrics.value("sluice_answers_total", **model, outcome="error") == 1
    assert metrics.value("sluice_time_to_first_token_seconds_count") == 0  # no output at all
    assert {s["model"] for s in metrics.series("sluice_answers_total")} == {"other"}


def test_a_request_the_guards_refuse_is_counted_and_unknown_paths_share_a_label(client):
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/no/such/thr_123").status_code == 404
    assert client.get("/and/another").status_code == 404
    metrics = scrape(client)
    assert metrics.value("sluice_http_requests_total", route="/healthz", status="400") == 1
    assert metrics.value("sluice_http_requests_total", route="unmatched", status="404") == 2


def test_two_apps_in_one_process_count_apart(make_app):
    first, second = make_app().test_client(), make_app().test_client()
    for client, times in ((first, 2), (second, 1)):
        for _ in range(times):
            client.get("/healthz")
    assert scrape(first).value("sluice_http_requests_total", route="/healthz") == 2
    assert scrape(second).value("sluice_http_requests_total", route="/healthz") == 1


def test_rate_limit_refusals_are_counted_by_limit(app):
    with app.test_request_context("/"):
        count_rate_limited("messages_per_minute")
        count_rate_limited("messages_per_minute")
    metrics = scrape(app.test_client())
    assert metrics.value("sluice_rate_limited_total", limit="messages_per_minute") == 2


def test_a_failure_to_record_is_logged_once_and_breaks_nothing(app, caplog):
    class Broken:
        def labels(self, *values: str) -> None:
            raise OSError("disk full")

    recorder(app).http_requests = Broken()
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="services.metrics"):
        assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 200]
        assert answer(client)[-1].data["status"] == "complete"
    failures = [r for r in caplog.records if "recording metrics" in r.getMessage()]
    assert len(failures) == 1 and "request_answered" in failures[0].getMessage()
    assert scrape(client).value("sluice_answers_total") == 1  # the rest still records


# --- who may read them -----------------------------------------------------------------

LOOPBACK_V4, LOOPBACK_V6, MAPPED = "127.0.0.1", "::1", "::ffff:127.0.0.2"


@pytest.mark.parametrize("remote", [LOOPBACK_V4, "127.3.4.5", LOOPBACK_V6, MAPPED])
def test_without_a_token_clients_on_this_host_may_read(client, remote):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": remote}).status_code == 200


@pytest.mark.parametrize("remote,headers", [
    ("10.0.0.7", {}),
    ("2001:db8::1", {}),
    ("::ffff:10.0.0.7", {}),
    # nginx connects from 127.0.0.1 for everyone, and says so in these.
    (LOOPBACK_V4, {"X-Forwarded-For": "203.0.113.9"}),
    (LOOPBACK_V4, {"X-Real-IP": "203.0.113.9"}),
    (LOOPBACK_V4, {"Forwarded": "for=203.0.113.9"}),
], ids=["ipv4", "ipv6", "mapped", "x-forwarded-for", "x-real-ip", "forwarded"])
def test_without_a_token_other_clients_are_refused(client, remote, headers):
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert "SLUICE_METRICS_TOKEN" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic c2VjcmV0", "Bearer",
                                           "Bearer s3cret-token-x"])
@pytest.mark.parametrize("remote", [LOOPBACK_V4, "10.0.0.7"])
def test_with_a_token_only_its_bearer_may_read(make_app, authorization, remote):
    client = make_app(SLUICE_METRICS_TOKEN="s3cret-token").test_client()
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": remote})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["code"] == "unauthorized"
    allowed = client.get("/metrics", headers={"Authorization": "bearer s3cret-token"},
                         environ_base={"REMOTE_ADDR": remote})
    assert allowed.status_code == 200


def test_the_host_guard_applies_to_metrics_too(client):
    assert client.get("/metrics", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("token", ["two words", "naïve", "tab\there"])
def test_a_token_that_cannot_travel_in_a_header_stops_startup(token):
    with pytest.raises(ConfigError, match="SLUICE_METRICS_TOKEN"):
        settings_from_env({"SLUICE_METRICS_TOKEN": token})


def test_a_multiprocess_directory_set_only_in_the_config_stops_startup(make_app, tmp_path):
    # prometheus_client decided on one process when imported: files would stay empty.
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        make_app(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
