"""The chat page's Memory panel in a real headless Chromium: add a fact, edit it, see the
server's refusal, delete it — under the page's CSP, with every text set as text."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

# The page does not depend on the storage backend: one is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def test_add_edit_and_delete_a_memory(page):
    page.get_by_role("button", name="Memory").click()
    panel = page.locator("#memory-dialog")
    expect(panel).to_be_visible()

    fact = "<b>I prefer metric units</b>"  # shown as typed: text, never markup
    panel.locator("#memory-content").fill(fact)
    panel.get_by_role("button", name="Remember").click()
    row = panel.locator(".memory-row", has_text=fact)
    expect(row.locator(".memory-content")).to_have_text(fact)
    expect(panel.locator(".memory-row b")).to_have_count(0)

    row.get_by_role("button", name="Edit").click()
    editing = panel.locator(".memory-row:has(textarea)")
    editing.locator("textarea").fill("   ")
    editing.get_by_role("button", name="Save").click()
    expect(panel.locator("#memory-error")).to_contain_text("'content' must be a non-empty")
    expect(row.locator(".memory-content")).to_have_text(fact)  # unchanged

    row.get_by_role("button", name="Edit").click()
    editing.locator("textarea").fill("I prefer SI units")
    editing.get_by_role("button", name="Save").click()
    edited = panel.locator(".memory-row", has_text="I prefer SI units")
    expect(edited).to_have_count(1)
    expect(panel.locator("#memory-error")).to_be_hidden()

    edited.get_by_role("button", name="Delete").click()
    expect(edited).to_have_count(0)
