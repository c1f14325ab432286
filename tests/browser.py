"""The chat page in a real headless Chromium (Debian's), driven by Playwright: the
fixtures and helpers the page tests share.

conftest.py imports the fixtures, so every page test shares one browser and one
server; a page test module pins `backend` to sqlite: the page does not depend on it.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        raise RuntimeError("Chromium is not installed: run scripts/install-test-services")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def page_server(start_server):
    # ~6 s per demo answer: slow enough to watch it grow, stop it, reload under it.
    return start_server(SLUICE_DEMO_TOKENS_PER_SECOND="25")


@contextmanager
def browser_page(chromium, server) -> Iterator[Page]:
    """A fresh browser context on `server`; no script error may happen on its page."""
    context = chromium.new_context(viewport={"width": 1200, "height": 800}, base_url=server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors  # no script error on the page, ever


@pytest.fixture
def page(chromium, page_server):
    with browser_page(chromium, page_server) as page:
        page.goto("/")
        expect(page.locator("#model-picker")).to_have_value("demo/echo")
        yield page


def ask(page: Page, text: str) -> None:
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")


def answer(page: Page):
    return page.locator(".message.assistant").last


def wait_until_done(page: Page, timeout: float = 20_000) -> None:
    expect(answer(page)).not_to_have_class("message assistant streaming", timeout=timeout)
    expect(page.locator("#send")).to_be_visible(timeout=timeout)


DOCS = Path(__file__).resolve().parent.parent / "docs"


def save_screenshot(page: Page, name: str) -> None:
    """The README's picture `docs/<name>`: made when missing, and remade only with
    SLUICE_UPDATE_SCREENSHOTS=1, so a test run leaves the work tree as it was."""
    path = DOCS / name
    if path.exists() and os.environ.get("SLUICE_UPDATE_SCREENSHOTS") != "1":
        return
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(path))
