"""What a reply sends to the model: a long thread summarized (once, then incrementally)
and fitted to the window, the user's own memories, and excerpts of the user's own
documents with their `sources` — checked on the requests the fake provider receives."""
from __future__ import annotations

import json

import pytest

from services.auth.accounts import create_user
from services.auth.keys import create_key
from services.context import count_messages
from services.providers import ChatMessage
from services.storage import database

from .fake_upstream import FakeUpstream, openai_text_reply
from .sse_client import read_test_response
from .test_documents import upload

WINDOW, RESERVE = 900, 100
SUMMARIZER_WINDOW = 3000
MODELS = f"""
[models."openai/ctx-small"]
context_window = {WINDOW}
output_reserve = {RESERVE}

[models."openai/ctx-summarizer"]
context_window = {SUMMARIZER_WINDOW}
output_reserve = 500
"""


@pytest.fixture
def app(make_app, tmp_path, fake_openai: FakeUpstream):
    path = tmp_path / "models.toml"
    path.write_text(MODELS)
    fake_openai.script("ctx-small", openai_text_reply("Noted."))
    fake_openai.script("ctx-summarizer", openai_text_reply("SUMMARY: facts were shared."))
    return make_app(SLUICE_MODELS_FILE=str(path), SLUICE_SUMMARY_MODEL="openai/ctx-summarizer",
                    SLUICE_AUTH="on")


def user(app, name: str) -> dict[str, str]:
    with database(app).sessions() as session:
        account = create_user(session, name, "a long enough password")
        _key, secret = create_key(session, account.id)
    return {"Authorization": f"Bearer {secret}"}


def send(client, headers, thread_id: str, content: str) -> list:
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream", headers=headers,
                           json={"content": content})
    assert response.status_code == 200, response.get_json()
    return read_test_response(response)


def new_thread(client, headers) -> str:
    return client.post("/api/v1/threads", headers=headers,
                       json={"model": "openai/ctx-small"}).get_json()["thread"]["id"]


def sent_tokens(body: dict) -> int:
    return count_messages([ChatMessage(m["role"], m.get("content") or "")
                           for m in body["messages"]], "openai/ctx-small")


def test_a_long_thread_is_summarized_once_then_incrementally_and_always_fits(app,
                                                                            fake_openai):
    client, alice = app.test_client(), user(app, "alice")
    thread_id = new_thread(client, alice)
    summarizing = []
    for turn in range(14):
        events = send(client, alice, thread_id, f"Fact {turn}: " + "lorem ipsum " * 40)
        assert events[-1].data["status"] == "complete"
        summarizing.append(any(e.event == "status" and e.data["stage"] == "summarizing"
                               for e in events))
    asks = [r["json"] for r in fake_openai.requests["ctx-small"]]
    summaries = [r["json"] for r in fake_openai.requests["ctx-summarizer"]]
    assert all(sent_tokens(body) <= WINDOW - RESERVE for body in asks)
    # Summarized more than once as the thread grew, but not on every turn.
    assert 2 <= len(summaries) == sum(summarizing) < 14
    first = summarizing.index(True)
    assert not any(summarizing[:first])
    # Incremental: a later summary is asked with the earlier one, never from scratch.
    assert "SUMMARY: facts were shared." not in json.dumps(summaries[0])
    assert all("SUMMARY: facts were shared." in json.dumps(body) for body in summaries[1:])
    assert "Fact 0:" not in json.dumps(summaries[-1])
    # The model is sent the summary instead of the oldest turns.
    assert "SUMMARY: facts were shared." in json.dumps(asks[-1])
    assert "Fact 0:" not in json.dumps(asks[-1]) and "Fact 13:" in json.dumps(asks[-1])
    # Every message stays stored and listed; the thread shows its summary.
    listed = client.get(f"/api/v1/threads/{thread_id}/messages",
                        headers=alice).get_json()["messages"]
    assert [m["content"].split(":")[0] for m in listed[::2]] == [f"Fact {n}" for n in range(14)]
    assert len(listed) == 28
    thread = client.get(f"/api/v1/threads/{thread_id}", headers=alice).get_json()["thread"]
    assert thread["summary"]["content"] == "SUMMARY: facts were shared."


def test_a_message_that_can_never_fit_is_a_400_and_stores_nothing(app):
    client, alice = app.test_client(), user(app, "alice")
    thread_id = new_thread(client, alice)
    response = client.post(f"/api/v1/threads/{thread_id}/messages/stream", headers=alice,
                           json={"content": "lorem ipsum " * 1000})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "context_too_long"
    assert client.get(f"/api/v1/threads/{thread_id}/messages",
                      headers=alice).get_json()["messages"] == []


def system_of(body: dict) -> str:
    return " ".join(m["content"] for m in body["messages"] if m["role"] == "system")


def test_memories_reach_only_their_own_users_prompts(app, fake_openai):
    client = app.test_client()
    alice, bob = user(app, "alice"), user(app, "bob")
    client.post("/api/v1/memories", headers=alice, json={"content": "Prefers metric units"})
    send(client, alice, new_thread(client, alice), "Remember that I work on the billing team.")
    stored = client.get("/api/v1/memories", headers=alice).get_json()["memories"]
    assert {m["content"] for m in stored} == {"Prefers metric units",
                                              "I work on the billing team"}
    send(client, alice, new_thread(client, alice), "How far is it?")
    send(client, bob, new_thread(client, bob), "How far is it?")
    alices, bobs = [r["json"] for r in fake_openai.requests["ctx-small"]][-2:]
    assert "Prefers metric units" in system_of(alices)
    assert "billing team" in system_of(alices)
    assert "metric" not in json.dumps(bobs) and "billing" not in json.dumps(bobs)


HANDBOOK = ("# Travel\n\nTrain tickets are refunded within 14 days.\n\n"
            "# Equipment\n\nEvery new hire gets a laptop and a blue backpack on day one.\n")


def test_answers_are_grounded_in_the_users_own_documents(app, fake_openai):
    client = app.test_client()
    alice, bob = user(app, "alice"), user(app, "bob")
    uploaded = upload(client, "handbook.md", HANDBOOK.encode(), "text/markdown", headers=alice)
    assert uploaded.status_code == 201, uploaded.get_json()
    document = uploaded.get_json()["document"]
    events = send(client, alice, new_thread(client, alice), "What do new hires get?")
    stages = [e.data["stage"] for e in events if e.event == "status"]
    assert stages[:2] == ["retrieving", "connecting"]
    [sources] = [e.data["sources"] for e in events if e.event == "sources"]
    assert sources and sources[0]["document_id"] == document["id"]
    assert sources[0]["filename"] == "handbook.md" and "backpack" in sources[0]["excerpt"]
    assert "blue backpack" in system_of(fake_openai.requests["ctx-small"][-1]["json"])
    answer = client.get(f"/api/v1/threads/{events[0].data['thread_id']}/messages",
                        headers=alice).get_json()["messages"][1]
    assert answer["sources"] == sources  # kept with the answer, for its citations
    # Bob has no documents: nothing is searched, and Alice's never reach him.
    events = send(client, bob, new_thread(client, bob), "What do new hires get?")
    assert not [e for e in events if e.event == "sources"]
    assert "backpack" not in json.dumps(fake_openai.requests["ctx-small"][-1]["json"])


def test_a_500_message_thread_keeps_working(app, fake_openai):
    """A thread that grew to 500 messages without ever being summarized (imported, or
    from before summaries): the next answer fits, and the summarizer is given no more
    than fits its own window."""
    from sqlalchemy import insert

    from services.conversation import message_row
    from services.storage import Message

    client, alice = app.test_client(), user(app, "alice")
    thread_id = new_thread(client, alice)
    rows = [message_row(thread_id=thread_id, position=n, status="complete",
                        role="user" if n % 2 == 0 else "assistant",
                        content=f"Message {n}: " + "lorem ipsum " * 20) for n in range(500)]
    with database(app).engine.begin() as connection:
        connection.execute(insert(Message.__table__), rows)
    events = send(client, alice, thread_id, "And now?")
    assert events[-1].data["status"] == "complete"
    assert "summarizing" in [e.data["stage"] for e in events if e.event == "status"]
    ask = fake_openai.requests["ctx-small"][-1]["json"]
    assert sent_tokens(ask) <= WINDOW - RESERVE and "And now?" in json.dumps(ask)
    summarized = fake_openai.requests["ctx-summarizer"][-1]["json"]
    assert sent_tokens(summarized) <= SUMMARIZER_WINDOW
    assert "Message 0:" in json.dumps(summarized) and "Message 499:" not in json.dumps(summarized)
    listed = client.get(f"/api/v1/threads/{thread_id}/messages", headers=alice).get_json()
    assert len(listed["messages"]) == 502


def test_the_providers_count_corrects_ours_but_never_below_the_plain_count(app, fake_openai):
    from services.context import context
    from services.context.tokens import scale

    from .fake_upstream import Reply, fixture
    client, alice = app.test_client(), user(app, "alice")
    fake_openai.script("ctx-small", Reply(fixture("openai/text_with_usage.sse")))
    calibration = context(app).calibration
    assert scale("openai/ctx-small", calibration) == 1.0
    send(client, alice, new_thread(client, alice), "hi")  # reported: 19, more than ours
    raised = scale("openai/ctx-small", calibration)
    assert raised > 1.0
    for _ in range(5):  # reported: 19, far fewer than ours
        send(client, alice, new_thread(client, alice), "hi " * 200)
    assert calibration.ratio("openai/ctx-small") < raised
    assert scale("openai/ctx-small", calibration) == 1.0


def test_a_message_too_long_stays_too_long_however_the_model_reports_usage(make_app):
    """The demo model reports words and leaves the system prompt out: five answers used
    to loosen its budget until a message refused before was sent (9,064 input tokens to
    a 7,168-token budget)."""
    client = make_app().test_client()
    too_long = "word " * 7500  # 7,500 cl100k tokens; the demo model's budget is 7,168
    thread_id = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]
    first = client.post(f"/api/v1/threads/{thread_id}/messages", json={"content": too_long})
    assert first.status_code == 400 and first.get_json()["error"]["code"] == "context_too_long"
    for _ in range(5):
        thread = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]
        assert client.post(f"/api/v1/threads/{thread}/messages",
                           json={"content": "Tell me about rivers."}).status_code == 200
    again = client.post(f"/api/v1/threads/{thread_id}/messages", json={"content": too_long})
    assert again.status_code == 400 and again.get_json()["error"]["code"] == "context_too_long"


def test_facts_are_extracted_after_an_answer_only_when_turned_on(make_app, fake_openai,
                                                                tmp_path):
    import time
    path = tmp_path / "models.toml"
    path.write_text(MODELS)
    for extraction in ("off", "on"):
        app = make_app(SLUICE_MODELS_FILE=str(path), SLUICE_AUTH="on",
                       SLUICE_MEMORY_EXTRACTION=extraction)
        client, alice = app.test_client(), user(app, "alice")
        fake_openai.script("ctx-small", openai_text_reply("Noted."),
                           openai_text_reply('```json\n["Lives in Oslo"]\n```'))
        send(client, alice, new_thread(client, alice), "I just moved to Oslo.")
        deadline = time.monotonic() + 5
        memories: list = []
        while extraction == "on" and not memories and time.monotonic() < deadline:
            memories = client.get("/api/v1/memories", headers=alice).get_json()["memories"]
            time.sleep(0.05)
        if extraction == "off":
            time.sleep(0.3)
            memories = client.get("/api/v1/memories", headers=alice).get_json()["memories"]
            assert memories == [] and len(fake_openai.requests["ctx-small"]) == 1
        else:
            assert [(m["content"], m["source"]) for m in memories] == [
                ("Lives in Oslo", "extracted")]
            assert "I just moved to Oslo." in json.dumps(fake_openai.requests["ctx-small"][1])


def test_the_demo_model_cites_the_excerpts_it_was_given(make_app):
    client = make_app().test_client()
    assert upload(client, "handbook.md", HANDBOOK.encode(), "text/markdown").status_code == 201
    thread_id = client.post("/api/v1/threads", json={}).get_json()["thread"]["id"]
    events = send(client, {}, thread_id, "What do new hires get on day one?")
    [sources] = [e.data["sources"] for e in events if e.event == "sources"]
    text = "".join(e.data["content"] for e in events if e.event == "delta")
    assert "### From your documents" in text and "blue backpack" in text
    assert "[1]" in text and sources[0]["filename"] == "handbook.md"
