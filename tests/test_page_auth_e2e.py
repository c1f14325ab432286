"""With SLUICE_AUTH=on, in a real Chromium: sign in, chat, manage a key, sign out."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .accounts import PASSWORD, create_account
from .browser import answer, ask, browser_page, save_screenshot, wait_until_done

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def auth_server(start_server):
    return start_server(SLUICE_AUTH="on", SLUICE_DEMO_TOKENS_PER_SECOND="200")


@pytest.fixture
def signed_out_page(chromium, auth_server):
    with browser_page(chromium, auth_server) as page:
        yield page


def test_sign_in_chat_manage_a_key_and_sign_out(signed_out_page, auth_server):
    page = signed_out_page
    create_account(auth_server, "grace")
    page.goto("/")
    expect(page).to_have_url(f"{auth_server.url}/login?next=/")
    save_screenshot(page, "sign-in-page.png")

    page.locator("#name").fill("grace")
    page.locator("#password").fill("not the password")
    page.locator("#sign-in").click()
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")

    page.locator("#password").fill(PASSWORD)
    page.locator("#sign-in").click()
    expect(page.locator("#account-name")).to_have_text("grace")
    expect(page.locator("#model-picker")).to_have_value("demo/echo")  # the page is ready
    ask(page, "Hello from a signed-in page")  # POSTs with the CSRF token
    wait_until_done(page)
    assert "demo model" in answer(page).locator(".body").inner_text()

    page.locator("#open-keys").click()
    page.locator("#key-name").fill("notebook")
    page.locator("#new-key button[type=submit]").click()
    expect(page.locator("#key-secret code")).to_contain_text("sk-sluice-")
    secret = page.locator("#key-secret code").inner_text()
    me = auth_server.api("GET", "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["user"]["name"] == "grace"
    row = page.locator(".key-row", has_text="notebook")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".key-row.revoked", has_text="notebook")).to_be_visible()
    assert auth_server.api("GET", "/api/v1/me",
                           headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    page.locator("#keys-dialog form[method=dialog] button").click()

    page.locator("#sign-out").click()
    expect(page).to_have_url(f"{auth_server.url}/login")
    page.goto("/")
    expect(page).to_have_url(f"{auth_server.url}/login?next=/")
