"""Tools Sluice runs itself, on the chat page in a real headless Chromium: a card per
call that goes from running to done or failed with its duration and result, a status
line under the answer while the server works, and the cards rebuilt from the stored
messages after a reload.

The demo model calls `current_time` and `calculator` (server tools) when asked for the
time and a sum, then answers; it shares the page tests' browser and server.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from .browser import answer, ask, save_screenshot, wait_until_done


# The page does not depend on the storage backend: one is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

DONE_WITH_DURATION = re.compile(r"· done · \d+(\.\d+)? (ms|s)$")
FAILED_WITH_DURATION = re.compile(r"· failed · \d+(\.\d+)? (ms|s)$")

# Every text the answers' status lines show, kept by the page itself in an attribute
# of #messages (one line each): a status can last less than one of Playwright's polls,
# and a record cannot miss it.
RECORD_STATUS_LINES = """() => {
  const messages = document.querySelector("#messages");
  const seen = [];
  const record = () => {
    for (const line of messages.querySelectorAll(".message.assistant [role=status]")) {
      if (line.textContent && line.textContent !== seen.at(-1)) seen.push(line.textContent);
    }
    messages.dataset.statusLines = seen.join("\\n");
  };
  new MutationObserver(record).observe(messages,
    { subtree: true, childList: true, characterData: true });
}"""


def thread_id_of(page: Page) -> str:
    return page.evaluate("location.hash").lstrip("#")


def card(page: Page, name: str) -> Locator:
    return answer(page).locator(".tool-card").filter(
        has=page.locator(".name", has_text=re.compile(f"^{re.escape(name)}$")))


def expect_tools_done(page: Page) -> None:
    cards = answer(page).locator(".tool-card")
    expect(cards).to_have_count(2, timeout=20_000)
    for name in ("current_time", "calculator"):
        expect(card(page, name).locator(".status")).to_have_text(DONE_WITH_DURATION, timeout=20_000)
        expect(card(page, name)).to_have_attribute("data-state", "done")
    expect(card(page, "calculator").locator(".result")).to_have_text("42")
    expect(card(page, "current_time").locator(".result")).not_to_be_empty()
    expect(answer(page).locator(".result.error")).to_have_count(0)


def test_server_tools_run_on_cards_under_a_status_line_and_survive_a_reload(page, page_server):
    page.evaluate(RECORD_STATUS_LINES)
    ask(page, "What time is it, and what is 6*7?")
    messages = page.locator("#messages")
    # Before any text the answer says it is thinking, then what the server is doing.
    expect(messages).to_have_attribute("data-status-lines", re.compile(r"^Thinking…"))
    expect(messages).to_have_attribute("data-status-lines", re.compile(r"Running|Waiting"),
                                       timeout=20_000)
    expect_tools_done(page)
    wait_until_done(page)
    expect(answer(page).get_by_role("status")).to_have_count(0)  # gone once the answer ends
    expect(answer(page).locator(".body")).not_to_be_empty()
    save_screenshot(page, "tool-cards.png")

    thread_id = thread_id_of(page)
    page.reload()
    expect(page.locator("#thread-title")).not_to_have_text("New chat")
    expect_tools_done(page)
    stored_tools = [m for m in page_server.messages(thread_id) if m["role"] == "tool"]
    assert len(stored_tools) == 2, stored_tools
    expect(answer(page).get_by_role("status")).to_have_count(0)


def test_a_failing_tool_shows_failed_with_its_error(page, page_server):
    ask(page, "what is 1/0?")
    calculator = card(page, "calculator")
    expect(calculator.locator(".status")).to_have_text(FAILED_WITH_DURATION, timeout=20_000)
    expect(calculator).to_have_attribute("data-state", "failed")
    wait_until_done(page)
    stored = [m for m in page_server.messages(thread_id_of(page)) if m["role"] == "tool"]
    assert stored and stored[-1]["status"] == "error", stored
    error_text = stored[-1]["error"]["message"]
    expect(calculator.locator(".result.error")).to_have_text(error_text)

    page.reload()
    expect(card(page, "calculator").locator(".status")).to_have_text(FAILED_WITH_DURATION)
    expect(card(page, "calculator").locator(".result.error")).to_have_text(error_text)
