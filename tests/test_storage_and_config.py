"""Migrations, settings, and resuming a stream whose events have expired."""
from __future__ import annotations

import time

import pytest
from alembic import command

from services.config import settings_from_env
from services.storage.migrate import alembic_config, upgrade_database
from services.streaming import streaming

from .sse_client import read_test_response


def test_migrations_build_exactly_the_schema_the_models_describe(backend, request, tmp_path):
    if backend.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'check.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database("migration_check")
    upgrade_database(url)
    command.check(alembic_config(url))  # raises if models and migrations differ
    command.downgrade(alembic_config(url), "base")
    upgrade_database(url)


def test_environment_settings_are_parsed():
    settings = settings_from_env({
        "DATABASE_URL": "postgresql+psycopg://u:p%40ss@db/sluice",
        "LLM_MODEL": "openai/gpt-4o-mini",
        "SLUICE_AUTH": "ON",
        "SLUICE_DEMO_TOKENS_PER_SECOND": "12.5",
        "SLUICE_MAX_REQUEST_BYTES": "2048",
        "SLUICE_WEBHOOK_ALLOW_PRIVATE": "on",
        "SLUICE_WEBHOOK_RETRY_SECONDS": "1, 2.5,60",
        "OPENAI_API_KEY": "",  # empty counts as unset
        "UNRELATED": "x",
    })
    assert settings == {
        "DATABASE_URL": "postgresql+psycopg://u:p%40ss@db/sluice",
        "LLM_MODEL": "openai/gpt-4o-mini",
        "SLUICE_AUTH": "on",
        "SLUICE_DEMO_TOKENS_PER_SECOND": 12.5,
        "MAX_CONTENT_LENGTH": 2048,
        "SLUICE_WEBHOOK_ALLOW_PRIVATE": "on",
        "SLUICE_WEBHOOK_RETRY_SECONDS": (1.0, 2.5, 60.0),
    }


@pytest.mark.parametrize(("variable", "value"), [
    ("SLUICE_PING_SECONDS", "soon"),
    ("SLUICE_CHECKPOINT_SECONDS", "0"),
    ("SLUICE_AUTH", "maybe"),
    ("SLUICE_WEBHOOK_ALLOW_PRIVATE", "yes"),
    ("SLUICE_MEMORY_EXTRACTION", "sometimes"),
    ("SLUICE_WEBHOOK_RETRY_SECONDS", "5,soon"),
    ("SLUICE_WEBHOOK_RETRY_SECONDS", "5,0"),
])
def test_a_malformed_setting_stops_startup_with_its_name(variable, value):
    with pytest.raises(ValueError, match=variable):
        settings_from_env({variable: value})


def test_an_unservable_default_model_stops_startup(make_app):
    with pytest.raises(Exception, match="no provider 'nowhere'"):
        make_app(LLM_MODEL="nowhere/model")


def test_resume_after_the_event_log_expired_replays_the_stored_message(make_app):
    app = make_app(SLUICE_EVENT_TTL_SECONDS=1)  # Redis expires in whole seconds
    client = app.test_client()
    thread_id = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]
    answer = client.post(f"/api/v1/threads/{thread_id}/messages",
                         json={"content": "remember me"}).get_json()["response"]
    time.sleep(1.5)
    assert not streaming(app).log.has(answer["stream_id"])

    response = client.get(f"/api/v1/streams/{answer['stream_id']}/events")
    assert response.status_code == 200
    events = read_test_response(response)
    assert [(e.id, e.event) for e in events] == [(1, "start"), (2, "delta"), (3, "done")]
    assert events[1].data["content"] == answer["content"]
    assert events[2].data["status"] == "complete"
    assert events[2].data["usage"] == answer["usage"]
    later = client.get(f"/api/v1/streams/{answer['stream_id']}/events?after=2")
    assert [e.event for e in read_test_response(later)] == ["done"]
    # An id from the lost original cannot be lined up with the stored text: start over.
    lost = client.get(f"/api/v1/streams/{answer['stream_id']}/events",
                      headers={"Last-Event-ID": "120"})
    assert [e.event for e in read_test_response(lost)] == ["start", "delta", "done"]


def test_an_operations_stream_replays_from_storage_after_its_events_expired(make_app):
    app = make_app(SLUICE_EVENT_TTL_SECONDS=1)
    client = app.test_client()
    live = read_test_response(client.post("/api/v1/operations/summarize/stream",
                                          json={"input": {"text": "Rivers run to the sea."}}))
    stream_id = live[0].data["stream_id"]
    time.sleep(1.5)
    assert not streaming(app).log.has(stream_id)
    replayed = read_test_response(client.get(f"/api/v1/streams/{stream_id}/events"))
    assert [e.event for e in replayed] == ["start", "delta", "done"]
    assert replayed[1].data["content"] == "".join(
        e.data["content"] for e in live if e.event == "delta")
    assert replayed[-1].data["result"] == live[-1].data["result"]
    assert replayed[0].data["run_id"] == live[0].data["run_id"]
