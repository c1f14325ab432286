"""The chat page in a real headless Chromium (Debian's), driven by Playwright.

It runs against a real gunicorn + gevent Sluice with a slowed-down demo model, so
streaming, stopping and reloading happen at a pace a person would see.
"""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from .browser import answer, ask, save_screenshot, wait_until_done
from .fake_upstream import Reply, fixture, openai_text_reply


# The page does not depend on the storage backend: one is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def thread_id_of(page: Page) -> str:
    return page.evaluate("location.hash").lstrip("#")


def stored_answer(server, thread_id: str) -> dict:
    return [m for m in server.messages(thread_id) if m["role"] == "assistant"][-1]


def rendered_fresh(page: Page, thread_id: str) -> str:
    """The answer's text as a fresh load of the thread renders the stored message."""
    other = page.context.new_page()
    other.goto(f"/#{thread_id}")
    expect(other.locator(".message.assistant .body").last).not_to_be_empty()
    text = other.locator(".message.assistant .body").last.inner_text()
    other.close()
    return text


def test_the_answer_appears_token_by_token(page, page_server):
    ask(page, "Show me streaming")
    body = answer(page).locator(".body")
    expect(answer(page)).to_have_class("message assistant streaming")
    expect(body).to_have_attribute("aria-live", "polite")
    states = []
    while "streaming" in (answer(page).get_attribute("class") or ""):
        text = body.inner_text()
        if text and (not states or text != states[-1]):
            states.append(text)
        time.sleep(0.05)
    wait_until_done(page)
    final = body.inner_text()
    intermediate = [s for s in states if s != final]
    assert len(intermediate) >= 3, intermediate  # seen growing, not appearing at once
    assert len(intermediate[0]) < len(intermediate[-1]) < len(final)
    assert "This is Sluice's demo model" in final  # Markdown rendered: no ** left
    assert page.locator(".message.assistant strong").first.inner_text() == \
        "This is Sluice's demo model"
    details = answer(page).locator(".details").inner_text()
    assert "demo/echo" in details and "tokens/s" in details and "first token" in details
    assert stored_answer(page_server, thread_id_of(page))["status"] == "complete"
    save_screenshot(page, "chat-page.png")


def test_stop_keeps_the_partial_answer_shown_and_stored_as_cancelled(page, page_server):
    assert_stopped_mid_answer(page, page_server, "Stop me half-way")


def assert_stopped_mid_answer(page, page_server, question: str) -> None:
    """Stop pressed mid-answer: the page keeps the partial answer, the same as stored,
    marked cancelled."""
    ask(page, question)
    body = answer(page).locator(".body")
    expect(body).to_contain_text("demo model")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_done(page)
    thread_id = thread_id_of(page)
    stored = stored_answer(page_server, thread_id)
    assert stored["status"] == "cancelled"
    assert 0 < len(stored["content"]) < 600
    assert body.inner_text() == rendered_fresh(page, thread_id)
    assert "cancelled" in answer(page).locator(".details").inner_text()


def test_a_reload_mid_answer_shows_the_text_so_far_and_continues(page, page_server):
    ask(page, "Survive a reload")
    expect(answer(page).locator(".body")).to_contain_text("demo model")
    thread_id = thread_id_of(page)
    page.reload()
    body = answer(page).locator(".body")
    expect(body).to_contain_text("demo model")  # the text so far, at once
    expect(answer(page)).to_have_class("message assistant streaming")  # and still live
    wait_until_done(page)
    stored = stored_answer(page_server, thread_id)
    assert stored["status"] == "complete"
    assert body.inner_text() == rendered_fresh(page, thread_id)
    assert "Try a real model" in body.inner_text()  # the very end of the answer


def test_a_second_tab_on_the_same_thread_follows_the_same_answer(page, page_server):
    ask(page, "Two tabs")
    expect(answer(page).locator(".body")).to_contain_text("demo model")
    second = page.context.new_page()
    second.goto(f"/#{thread_id_of(page)}")
    expect(second.locator(".message.assistant").last).to_have_class(
        "message assistant streaming")
    wait_until_done(page)
    wait_until_done(second)
    assert second.locator(".message.assistant .body").last.inner_text() == \
        answer(page).locator(".body").inner_text()


def test_with_streaming_off_the_json_endpoint_is_used(page, page_server):
    page.get_by_role("checkbox", name="Stream").uncheck()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    ask(page, "No streaming please")
    expect(answer(page).locator(".details")).to_contain_text("demo/echo", timeout=20_000)
    assert any(url.endswith("/messages") for url in posts), posts
    assert not any(url.endswith("/messages/stream") for url in posts), posts
    page.reload()
    expect(page.get_by_role("checkbox", name="Stream")).not_to_be_checked()  # the choice is remembered


def test_model_output_cannot_run_code_on_the_page(page, page_server, fake_openai):
    hostile = ('Look: <img src=x onerror="window.__pwned=1"> and '
               '<script>window.__pwned=2</script> <a href="javascript:window.__pwned=3">x</a>')
    fake_openai.script("xss-probe", openai_text_reply(hostile))
    thread_id = page_server.new_thread(model="openai/xss-probe")
    page.goto(f"/#{thread_id}")
    expect(page.locator("#model-picker")).to_have_value("openai/xss-probe")
    ask(page, "Say something nasty")
    wait_until_done(page)
    page.locator(".body a").first.click()
    time.sleep(0.3)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("[onerror], script:not([type=module])").count() == 0
    assert "Look:" in answer(page).inner_text()


def test_a_server_error_is_shown_and_retry_works(page, page_server, fake_openai):
    failure = Reply(b'{"error": {"message": "upstream on fire"}}', status=500,
                    content_type="application/json")
    fake_openai.script("flaky-page", failure, failure, failure,
                       Reply(fixture("openai/text_with_usage.sse")))
    thread_id = page_server.new_thread(model="openai/flaky-page")
    page.goto(f"/#{thread_id}")
    ask(page, "Try me")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("upstream on fire", timeout=20_000)
    alert.get_by_role("button", name="Retry").click()
    expect(answer(page).locator(".body")).to_have_text("Héllo, 世界 👋🏽 — done.",
                                                        timeout=20_000)


def test_keyboard_threads_and_a_phone_sized_screen(page, page_server):
    page.locator("#prompt").fill("line one")
    page.locator("#prompt").press("Shift+Enter")
    page.locator("#prompt").type("line two")
    page.locator("#prompt").press("Enter")
    expect(page.locator(".message.user .body").last).to_have_text("line one\nline two")
    wait_until_done(page)

    page.once("dialog", lambda dialog: dialog.accept("Renamed chat"))
    page.get_by_role("button", name="Rename line one").click()
    expect(page.locator("#thread-title")).to_have_text("Renamed chat")
    assert page_server.api("GET", f"/api/v1/threads/{thread_id_of(page)}").json()[
        "thread"]["title"] == "Renamed chat"

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#thread-list")).to_be_hidden()
    page.get_by_role("button", name="Show threads").click()
    expect(page.get_by_role("button", name="Delete Renamed chat")).to_be_visible()
    thread_id = thread_id_of(page)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete Renamed chat").click()
    expect(page.locator("#thread-title")).to_have_text("New chat")
    assert page_server.api("GET", f"/api/v1/threads/{thread_id}").status_code == 404


def test_tool_calls_show_as_cards_with_their_results(page, page_server, fake_openai):
    fake_openai.script("tools-page", Reply(fixture("openai/parallel_tool_calls.sse")),
                       Reply(fixture("openai/text_with_usage.sse")))
    thread_id = page_server.new_thread(model="openai/tools-page")
    tools = [{"type": "function", "function": {"name": name}}
             for name in ("get_weather", "get_time")]
    page_server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                    json={"content": "Weather and time?", "tools": tools})
    page_server.api("POST", f"/api/v1/threads/{thread_id}/messages", json={
        "tools": tools, "tool_results": [{"tool_call_id": "call_W8xq", "content": "-2°C"},
                                         {"tool_call_id": "call_T3mz", "content": "09:41"}]})
    page.goto(f"/#{thread_id}")
    cards = page.locator(".tool-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("get_weather")
    expect(cards.nth(0)).to_contain_text('{"city": "Zürich"}')
    expect(cards.nth(0).locator(".result")).to_have_text("-2°C")
    expect(cards.nth(1).locator(".status")).to_have_text(" · done")
    expect(answer(page).locator(".body")).to_have_text("Héllo, 世界 👋🏽 — done.")


def test_a_message_sent_while_a_thread_is_still_opening_is_not_lost(page, page_server):
    thread_id = page_server.new_thread()

    def slow_history(route):
        if route.request.method == "GET":
            time.sleep(1)  # the thread's messages arrive after the user has typed
        route.continue_()

    page.route("**/api/v1/threads/*/messages", slow_history)
    page.goto(f"/#{thread_id}")
    ask(page, "Fast typist")
    wait_until_done(page)
    expect(page.locator(".message.user .body")).to_have_text(["Fast typist"])
    expect(answer(page).locator(".body")).to_contain_text("demo model")
