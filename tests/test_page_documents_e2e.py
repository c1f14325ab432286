"""The Documents panel and citations on the chat page in a real headless Chromium: a
Markdown handbook uploaded through the panel is listed ready, an answer whose question
is in it cites it under the text, the chat can attach it, and a deleted document leaves
the list; a large file's indexing job shows its progress until the document is ready.
It shares the page tests' browser and server (auth off: one user)."""
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


def test_a_large_upload_shows_its_indexing_job_until_ready(page, tmp_path):
    """A file over 256 KB is indexed by a job: the panel follows the job's events,
    showing `Indexing n of m chunks…`, then lists the document ready."""
    large = tmp_path / "atlas.md"
    sections = [f"## River {n}\nThe river number {n} flows past the town of Alder{n}. " * 6
                for n in range(900)]
    large.write_text("\n\n".join(sections))
    assert large.stat().st_size > 256 * 1024
    panel = open_panel(page)
    page.evaluate("""() => {
        window.progressSeen = [];
        const node = document.querySelector("#document-progress");
        new MutationObserver(() => window.progressSeen.push(node.textContent))
            .observe(node, {childList: true, characterData: true, subtree: true});
    }""")
    panel.locator("#document-file").set_input_files(str(large))
    row = panel.locator(".document-row", has_text="atlas.md")
    expect(row).to_contain_text(re.compile(r"\d+ KB · ready · \d+ chunks"), timeout=30_000)
    expect(panel.locator("#document-progress")).to_be_hidden()
    seen = page.evaluate("window.progressSeen")
    assert any(re.fullmatch(r"atlas\.md: Indexing \d+ of \d+ chunks…", text) for text in seen), seen
