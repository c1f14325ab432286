"""The Documents panel and citations on the chat page in a real headless Chromium: a
Markdown handbook uploaded through the panel is listed ready, an answer whose question
is in it cites it under the text, the chat can attach it, and a deleted document leaves
the list. It shares the page tests' browser and server (auth off: one user)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .browser import answer, ask, save_screenshot, wait_until_done


# The page does not depend on the storage backend: one is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

HANDBOOK = b"""# Staff handbook

## Holidays
Every employee gets twenty-eight days of paid leave. Requests go to the rota channel
two weeks ahead; the kestrel team approves them.

## Expenses
Receipts are scanned within thirty days.
"""


def open_panel(page: Page):
    page.get_by_role("button", name="Documents").click()
    panel = page.locator("#documents-dialog")
    expect(panel).to_be_visible()
    return panel


def test_an_uploaded_handbook_is_cited_attached_and_deleted(page, tmp_path):
    handbook = tmp_path / "handbook.md"
    handbook.write_bytes(HANDBOOK)
    panel = open_panel(page)
    expect(panel.locator("#documents-attached")).to_contain_text("Start a chat")
    panel.locator("#document-file").set_input_files(str(handbook))
    row = panel.locator(".document-row", has_text="handbook.md")
    expect(row).to_contain_text(re.compile(r"\d+ bytes · ready · \d+ chunks?"))
    expect(panel.locator("#document-progress")).to_be_hidden()
    panel.get_by_role("button", name="Close").click()

    ask(page, "How many days of paid leave does the kestrel team approve?")
    citation = answer(page).locator(".sources .source-excerpt summary").first
    expect(citation).to_have_text(re.compile(r"^\[1\] handbook\.md · chunk \d+$"))
    wait_until_done(page)
    citation.click()  # the excerpt opens under its label
    expect(answer(page).locator(".source-excerpt .excerpt").first).to_contain_text("paid leave")
    save_screenshot(page, "documents.png")
    page.reload()  # the answer keeps its sources
    expect(answer(page).locator(".sources .source-excerpt summary").first).to_have_text(
        re.compile(r"^\[1\] handbook\.md · chunk \d+$"))

    panel = open_panel(page)
    attached = panel.locator("#documents-attached")
    expect(attached).to_have_text("No documents attached: answers search all of your documents.")
    box = panel.get_by_role("checkbox", name="Attach handbook.md to this chat")
    box.check()
    expect(attached).to_contain_text("1 attached")
    expect(panel.get_by_role("checkbox", name="Attach handbook.md to this chat")).to_be_checked()

    page.once("dialog", lambda dialog: dialog.accept())  # "Delete "handbook.md"?"
    panel.get_by_role("button", name="Delete handbook.md").click()
    expect(panel.locator(".document-row", has_text="handbook.md")).to_have_count(0)
    expect(attached).to_have_text("No documents attached: answers search all of your documents.")
