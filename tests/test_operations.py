"""AI operations through the API: every built-in on the demo model and a fake provider,
streamed and not; JSON results checked, repaired once, or failed clearly; input that
is data, never template; runs stored and listed per user."""
from __future__ import annotations

import json

import pytest

from services.config import ConfigError
from services.operations.definitions import parse_operations

from .fake_upstream import openai_text_reply
from .sse_client import read_test_response, text_of

INPUTS = {
    "refine": {"text": "this are a draft with mistake", "tone": "formal"},
    "summarize": {"text": "Sluice streams answers. It stores them. It resumes them.",
                  "max_sentences": 2},
    "translate": {"text": "Good morning", "target_language": "French"},
    "extract": {"text": "Ada Lovelace, ada@example.com", "fields": ["name", "email"]},
}


def run(client, name: str, **body):
    return client.post(f"/api/v1/operations/{name}", json=body)


def test_the_list_describes_each_operation_with_its_input_schema(client):
    listed = {op["name"]: op for op in client.get("/api/v1/operations").get_json()["operations"]}
    assert {"refine", "summarize", "translate", "extract"} <= set(listed)
    refine = listed["refine"]["input_schema"]
    assert refine["type"] == "object" and refine["required"] == ["text"]
    assert refine["properties"]["tone"]["enum"] == ["neutral", "friendly", "formal", "concise"]
    assert listed["extract"]["output"] == "json" and listed["refine"]["output"] == "text"
    assert listed["extract"]["input_schema"]["properties"]["fields"]["items"] == {"type": "string"}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_every_builtin_answers_on_the_demo_model(client, name):
    response = run(client, name, input=INPUTS[name])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "complete" and body["model"] == "demo/echo"
    assert body["usage"]["output_tokens"] > 0 and body["metrics"]["duration_ms"] >= 0
    if name == "extract":
        assert isinstance(body["result"], dict) and body["result"]
        assert json.loads(body["raw"]) == body["result"]
    else:
        assert body["result"] == body["raw"] and "demo model" in body["raw"]
    stored = client.get(f"/api/v1/operations/runs/{body['run_id']}").get_json()["run"]
    assert (stored["operation"], stored["result"], stored["raw"]) == (name, body["result"],
                                                                      body["raw"])


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_every_builtin_streams_with_the_chat_protocol(client, name):
    response = client.post(f"/api/v1/operations/{name}/stream", json={"input": INPUTS[name]})
    assert response.status_code == 200
    events = read_test_response(response)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    start, done = events[0], events[-1]
    assert start.event == "start" and start.data["thread_id"] is None
    assert done.event == "done" and done.data["status"] == "complete"
    run_id = done.data["run_id"]
    stored = client.get(f"/api/v1/operations/runs/{run_id}").get_json()["run"]
    assert text_of(events) == stored["raw"]
    assert done.data["result"] == stored["result"]


def test_a_fake_provider_answers_an_operation(client, fake_openai):
    fake_openai.script("ops-text", openai_text_reply("Bonjour", deltas=3))
    body = run(client, "translate", model="openai/ops-text",
               input={"text": "Hello", "target_language": "French"}).get_json()
    assert (body["result"], body["model"]) == ("Bonjour", "openai/ops-text")
    sent = fake_openai.requests["ops-text"][0]["json"]
    assert sent["messages"][0]["role"] == "system"
    assert "into French" in sent["messages"][-1]["content"]


def test_invalid_json_is_repaired_once(client, fake_openai):
    fake_openai.script("ops-repair", openai_text_reply("Sure! name is Ada"),
                       openai_text_reply('```json\n{"name": "Ada", "email": null}\n```'))
    response = client.post("/api/v1/operations/extract/stream", json={
        "model": "openai/ops-repair", "input": INPUTS["extract"]})
    events = read_test_response(response)
    statuses = [e.data for e in events if e.event == "status"]
    assert [s["stage"] for s in statuses] == ["connecting", "retrying"]
    assert statuses[1]["reason"] == "invalid_output"
    done = events[-1].data
    assert done["status"] == "complete" and done["result"] == {"name": "Ada", "email": None}
    repair = fake_openai.requests["ops-repair"][1]["json"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! name is Ada"}
    assert "not valid JSON" in repair[-1]["content"]
    stored = client.get(f"/api/v1/operations/runs/{done['run_id']}").get_json()["run"]
    assert stored["raw"].startswith("```json")  # the text the result came from


def test_json_that_stays_invalid_fails_with_the_reason(client, fake_openai):
    fake_openai.script("ops-bad", openai_text_reply("[1, 2]"))
    response = run(client, "extract", model="openai/ops-bad", input=INPUTS["extract"])
    assert response.status_code == 502
    body = response.get_json()
    assert body["error"]["code"] == "invalid_output"
    assert "does not match the schema" in body["error"]["message"]
    assert body["result"] is None and body["raw"] == "[1, 2]"  # nothing is lost
    assert len(fake_openai.requests["ops-bad"]) == 2  # the answer, and one repair


@pytest.mark.parametrize("hostile", [
    "{{ 7 * 7 }}", "{{ ''.__class__.__mro__ }}", "{% for x in range(3) %}x{% endfor %}",
    "{{ config }}", "{{ self.__init__.__globals__ }}",
])
def test_input_is_data_never_template(client, fake_openai, hostile):
    fake_openai.script("ops-echo", openai_text_reply("ok"))
    response = run(client, "refine", model="openai/ops-echo", input={"text": hostile})
    assert response.status_code == 200
    prompt = fake_openai.requests["ops-echo"][0]["json"]["messages"][-1]["content"]
    assert hostile in prompt and "49" not in prompt


@pytest.mark.parametrize(("payload", "param", "words"), [
    ({"input": {}}, "input.text", "is required"),
    ({"input": {"text": 5}}, "input.text", "must be a string"),
    ({"input": {"text": ""}}, "input.text", "at least 1"),
    ({"input": {"text": "x", "tone": "angry"}}, "input.tone", "must be one of"),
    ({"input": {"text": "x", "colour": "red"}}, "input.colour", "is not a field"),
    ({"input": ["text"]}, "input", "must be an object"),
    ({"input": {"text": "x"}, "model": ""}, "model", "model id"),
])
def test_bad_input_is_a_400_naming_the_field(client, payload, param, words):
    response = run(client, "refine", **payload)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] in ("invalid_input", "invalid_field") and words in error["message"]
    assert param in error["message"]
    assert client.get("/api/v1/operations/runs").get_json()["runs"] == []  # nothing stored


def test_an_unknown_operation_or_model_is_refused(client):
    assert run(client, "nope", input={}).status_code == 404
    response = run(client, "refine", input={"text": "x"}, model="nope/model")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "unknown_model"


def test_runs_are_listed_newest_first_and_filtered(client):
    for name in ("refine", "translate", "refine"):
        assert run(client, name, input=INPUTS[name]).status_code == 200
    runs = client.get("/api/v1/operations/runs").get_json()["runs"]
    assert [r["operation"] for r in runs] == ["refine", "translate", "refine"]
    only = client.get("/api/v1/operations/runs?operation=translate").get_json()["runs"]
    assert [r["operation"] for r in only] == ["translate"]
    assert client.get("/api/v1/operations/runs?status=complete&limit=1").get_json()["runs"] \
        == runs[:1]
    assert client.get("/api/v1/operations/runs?status=bogus").status_code == 400
    assert client.get("/api/v1/operations/runs?operation=nobody").get_json()["runs"] == []
    for bad in ("tr%00anslate", "Translate", "x" * 65):  # PostgreSQL refuses NUL in text
        response = client.get(f"/api/v1/operations/runs?operation={bad}")
        error = response.get_json()["error"]
        assert response.status_code == 400 and "'operation'" in error["message"]


def test_an_operations_file_adds_operations(make_app, tmp_path):
    path = tmp_path / "ops.toml"
    path.write_text('[operations.shout]\nprompt = "Shout {{ words }}"\n'
                    '[operations.shout.input.words]\ntype = "string"\nrequired = true\n')
    client = make_app(SLUICE_OPERATIONS_FILE=str(path)).test_client()
    body = run(client, "shout", input={"words": "hello"}).get_json()
    assert body["status"] == "complete" and "Shout hello" in body["raw"]


@pytest.mark.parametrize(("toml", "words"), [
    ('[operations.x]\nprompt = "{{ a"', "[operations.x] prompt is not a valid template"),
    ('[operations.x]\nprompt = "p"\nmodle = "a"', "[operations.x] modle is not a setting"),
    ('[operations.x]\nprompt = "p"\n[operations.x.input.f]\ntype = "date"',
     "[operations.x.input.f] type must be one of"),
    ('[operations.x]\nprompt = "p"\noutput = "json"\noutput_schema = {type = 5}',
     "[operations.x] output_schema is not a JSON Schema"),
    ('[ops.x]\nprompt = "p"', "unknown table [ops]"),
])
def test_a_bad_operations_file_names_the_table_and_key(toml, words):
    with pytest.raises(ConfigError, match="ops.toml") as raised:
        parse_operations(toml, "ops.toml")
    assert words in str(raised.value)
