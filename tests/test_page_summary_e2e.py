"""The summary marker on the chat page in a real headless Chromium: a thread long enough
for the demo model's small window is summarized, the page shows where the summary ends
(every message still shown above and below it), and the marker moves when an answer on
the page summarizes further."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .browser import ask, browser_page, wait_until_done

# The page does not depend on the storage backend: one is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

# Room for about two of the demo model's answers: from the fourth turn on, each one
# summarizes further.
SMALL_WINDOW = '[models."demo/echo"]\ncontext_window = 700\noutput_reserve = 200\n'


def test_the_page_shows_where_a_long_threads_summary_ends(chromium, start_server, tmp_path):
    models = tmp_path / "models.toml"
    models.write_text(SMALL_WINDOW)
    server = start_server(SLUICE_MODELS_FILE=str(models), SLUICE_DEMO_TOKENS_PER_SECOND="2000")
    thread_id = server.new_thread()
    for turn in range(1, 6):
        sent = server.api("POST", f"/api/v1/threads/{thread_id}/messages",
                          json={"content": f"Question {turn}: tell me about rivers."})
        assert sent.status_code == 200, sent.text
    summary = server.api("GET", f"/api/v1/threads/{thread_id}").json()["thread"]["summary"]
    assert summary is not None, "the thread was never summarized: the window is too large"

    with browser_page(chromium, server) as page:
        page.goto(f"/#{thread_id}")
        messages = page.locator("#messages > .message")
        expect(messages).to_have_count(10)  # summarized messages stay on the page
        marker = page.locator(".summary-marker")
        expect(marker).to_have_count(1)
        expect(marker.locator("summary")).to_have_text(
            "Earlier messages are summarized for the model")
        above = page.locator(f'[data-message-ids~="{summary["upto_message_id"]}"]')
        expect(above).to_have_count(1)
        assert above.evaluate("node => node.nextElementSibling.classList.contains("
                              "'summary-marker')")
        before = marker.evaluate("node => [...node.parentNode.children].indexOf(node)")

        for turn in range(6, 9):
            ask(page, f"Question {turn}: and lakes?")
            wait_until_done(page)
        expect(messages).to_have_count(16)
        expect(marker).to_have_count(1)
        moved = server.api("GET", f"/api/v1/threads/{thread_id}").json()["thread"]["summary"]
        assert moved["upto_message_id"] != summary["upto_message_id"]
        expect(page.locator(f'[data-message-ids~="{moved["upto_message_id"]}"] + .summary-marker')
               ).to_have_count(1)
        assert marker.evaluate("node => [...node.parentNode.children].indexOf(node)") > before
