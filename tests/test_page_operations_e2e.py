"""The chat page's Operations panel in a real headless Chromium (Debian's), driven by
Playwright: a form built from each operation's input schema, run streamed or whole as
the page's Stream toggle says, and the server's refusals shown in the panel."""
from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Page, expect

from .fake_upstream import openai_text_reply


# The page does not depend on the storage backend: one is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def open_panel(page: Page, operation: str):
    page.get_by_role("button", name="Operations").click()
    panel = page.locator("#operations-dialog")
    expect(panel).to_be_visible()
    expect(panel.locator("#operation-picker option")).not_to_have_count(0)
    panel.locator("#operation-picker").select_option(operation)
    return panel


def posts_of(page: Page) -> list[str]:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    return posts


def test_the_form_follows_the_input_schema(page):
    panel = open_panel(page, "summarize")
    expect(panel.locator("#operation-field-text")).to_have_js_property("tagName", "TEXTAREA")
    expect(panel.locator("#operation-field-text")).to_have_attribute("required", "")
    sentences = panel.locator("#operation-field-max_sentences")
    expect(sentences).to_have_attribute("type", "number")
    expect(sentences).to_have_value("3")  # its default
    expect(sentences).to_have_attribute("min", "1")
    expect(sentences).to_have_attribute("max", "20")
    expect(panel.locator("#operation-field-style")).to_have_value("prose")  # an enum: a select
    panel.locator("#operation-picker").select_option("extract")
    expect(panel.locator("#operation-field-fields")).to_have_attribute("type", "text")
    expect(panel.locator("#operation-field-max_sentences")).to_have_count(0)


def test_streaming_on_shows_the_text_as_it_arrives_then_the_result(page, page_server):
    expect(page.get_by_role("checkbox", name="Stream")).to_be_checked()
    posts = posts_of(page)
    panel = open_panel(page, "refine")
    panel.locator("#operation-field-text").fill("this are a draft with mistake")
    panel.locator("#operation-field-tone").select_option("formal")
    panel.get_by_role("button", name="Run").click()
    output = panel.locator("#operation-output")
    expect(output).to_contain_text("demo model")
    states = []
    while panel.locator("#operation-run").is_disabled():  # still running
        text = output.inner_text()
        if text and (not states or text != states[-1]):
            states.append(text)
        time.sleep(0.05)
    expect(panel.locator("#operation-status")).to_contain_text("complete")
    final = output.inner_text()
    assert len([s for s in states if s != final]) >= 2, states  # seen growing
    assert "demo model" in final
    assert panel.locator("#operation-error").is_hidden()
    assert any(url.endswith("/api/v1/operations/refine/stream") for url in posts), posts


def test_streaming_off_runs_the_json_endpoint_and_shows_the_json_result(page, page_server):
    page.get_by_role("checkbox", name="Stream").uncheck()
    posts = posts_of(page)
    panel = open_panel(page, "extract")
    panel.locator("#operation-field-text").fill("Ada Lovelace, ada@example.com")
    panel.locator("#operation-field-fields").fill("name, email")
    panel.get_by_role("button", name="Run").click()
    expect(panel.locator("#operation-status")).to_contain_text("complete", timeout=30_000)
    result = json.loads(panel.locator("#operation-output").inner_text())
    assert isinstance(result, dict) and result
    assert any(url.endswith("/api/v1/operations/extract") for url in posts), posts
    assert not any(url.endswith("/stream") for url in posts), posts


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "whole"])
def test_the_servers_refusal_names_the_field(page, streaming):
    page.get_by_role("checkbox", name="Stream").set_checked(streaming)
    panel = open_panel(page, "translate")
    # The browser would refuse the empty required field itself: let it through.
    panel.locator("#operation-form").evaluate("form => { form.noValidate = true; }")
    panel.locator("#operation-field-target_language").fill("French")
    panel.get_by_role("button", name="Run").click()
    error = panel.locator("#operation-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("input.text")
    expect(error).to_contain_text("is required")
    expect(panel.locator("#operation-run")).to_be_enabled()
    assert panel.locator("#operation-output").is_hidden()


def test_model_text_is_shown_as_text_never_as_html(page, page_server, fake_openai):
    fake_openai.script("ops-hostile", openai_text_reply(
        '<img src=x onerror="window.__pwned=1"><b>bold</b>', deltas=3))
    # The panel runs on the operation's model; send this run to the fake provider.
    page.route("**/api/v1/operations/refine/stream", lambda route: route.continue_(
        post_data=json.dumps({**json.loads(route.request.post_data),
                              "model": "openai/ops-hostile"})))
    panel = open_panel(page, "refine")
    panel.locator("#operation-field-text").fill("anything")
    panel.get_by_role("button", name="Run").click()
    expect(panel.locator("#operation-status")).to_contain_text("complete", timeout=20_000)
    expect(panel.locator("#operation-output")).to_have_text(
        '<img src=x onerror="window.__pwned=1"><b>bold</b>')
    assert panel.locator("#operation-output img, #operation-output b").count() == 0
    assert page.evaluate("window.__pwned") is None
