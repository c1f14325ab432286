"""The chat page with answers streamed over Socket.IO (WebSocket) instead of SSE, in
Debian's Chromium against real gunicorn + gevent: the same answers, the same Stop,
and a socket cut mid-answer picks up where it broke off without losing or repeating text.

The connection is cut from outside the page, with Playwright's WebSocket routing: the
page's code has no hook for tests.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from .browser import answer, ask, wait_until_done
from .test_page_e2e import assert_stopped_mid_answer, rendered_fresh, stored_answer, thread_id_of


pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


class SocketRoutes:
    """Every Socket.IO connection of a page, passed through to the server; `cut()` ends
    the open ones from the server's side, as a dropped network would."""

    def __init__(self, page: Page) -> None:
        self.open: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        self.connections = 0
        page.route_web_socket(re.compile(r"/socket\.io/"), self.connect)

    def connect(self, page_side: WebSocketRoute) -> None:
        self.connections += 1
        self.open.append((page_side, page_side.connect_to_server()))

    def cut(self) -> None:
        while self.open:
            page_side, server_side = self.open.pop()
            server_side.close()
            page_side.close()


@pytest.fixture
def sockets(page: Page) -> SocketRoutes:
    page.get_by_role("combobox", name="Stream over").select_option("websocket")
    routes = SocketRoutes(page)
    page.reload()  # routing reaches only documents loaded after it is set up
    expect(page.locator("#model-picker")).to_have_value("demo/echo")
    return routes


def stream_posts(page: Page) -> list[str]:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.url.endswith("/messages/stream") else None)
    return posts


def test_an_answer_streams_over_the_socket_and_equals_the_stored_message(page, page_server, sockets):
    posts = stream_posts(page)
    ask(page, "Stream me over a socket")
    body = answer(page).locator(".body")
    rate = answer(page).locator(".stream-rate")
    expect(answer(page)).to_have_class("message assistant streaming")
    expect(rate).to_have_text(re.compile(r"^\d+ tok/s$"), timeout=10_000)  # live while it streams
    wait_until_done(page)
    expect(rate).to_be_hidden()  # the details line has the server's figure now
    thread_id = thread_id_of(page)
    assert stored_answer(page_server, thread_id)["status"] == "complete"
    assert body.inner_text() == rendered_fresh(page, thread_id)
    assert "Try a real model" in body.inner_text()
    assert sockets.connections == 1 and not posts, posts
    page.reload()  # the choice is remembered
    expect(page.get_by_role("combobox", name="Stream over")).to_have_value("websocket")


def test_stop_over_the_socket_cancels_the_answer(page, page_server, sockets):
    assert_stopped_mid_answer(page, page_server, "Stop me over a socket")
    assert sockets.connections == 1


def test_a_socket_cut_mid_answer_resumes_without_lost_or_repeated_text(page, page_server, sockets):
    posts = stream_posts(page)
    ask(page, "Survive a cut socket")
    body = answer(page).locator(".body")
    expect(body).to_contain_text("demo model")
    sockets.cut()
    expect(answer(page)).to_have_class("message assistant streaming")  # still following
    wait_until_done(page)
    thread_id = thread_id_of(page)
    stored = stored_answer(page_server, thread_id)
    assert stored["status"] == "complete"
    assert sockets.connections >= 2  # it came back on a new connection
    text = body.inner_text()
    assert text == rendered_fresh(page, thread_id)
    assert text.count("This is Sluice's demo model") == 1  # the start is not repeated
    assert "Try a real model" in text  # nor the end missing
    assert not posts, posts
