"""SLUICE_AUTH=on against a live server: one user never sees or touches another's data,
credentials are checked on every route, and the cookie session needs its CSRF token.

Every object is made through the API by its owner; the other user then tries every
route with the owner's ids. "Not found" must be exactly what a missing id gets, so
nothing tells that the object exists.
"""
from __future__ import annotations

import time

import pytest

from .accounts import Account, create_account, new_key
from .fake_upstream import Reply, fixture
from .sse_client import read_stream

# (method, path template, JSON body) of every route that takes another object's id.
BY_ID = [
    ("GET", "/api/v1/threads/{thread}", None),
    ("PATCH", "/api/v1/threads/{thread}", {"title": "taken over"}),
    ("GET", "/api/v1/threads/{thread}/messages", None),
    ("POST", "/api/v1/threads/{thread}/messages", {"content": "hello"}),
    ("POST", "/api/v1/threads/{thread}/messages/stream", {"content": "hello"}),
    ("GET", "/api/v1/streams/{stream}/events", None),
    ("POST", "/api/v1/streams/{stream}/cancel", None),
    ("DELETE", "/api/v1/keys/{key}", None),
    ("DELETE", "/api/v1/threads/{thread}", None),  # last: it would delete
]
# Routes without an id; each needs credentials too.
COLLECTIONS = [
    ("GET", "/api/v1/threads", None), ("POST", "/api/v1/threads", {}),
    ("GET", "/api/v1/keys", None), ("POST", "/api/v1/keys", {"name": "mine"}),
    ("GET", "/api/v1/me", None), ("GET", "/api/v1/models", None),
]
MISSING = {"thread": "thr_000000000000000000000000", "stream": "str_000000000000000000000000",
           "key": "key_000000000000000000000000"}


@pytest.fixture(scope="module")
def server(start_server):
    return start_server(SLUICE_AUTH="on", SLUICE_DEMO_TOKENS_PER_SECOND="2000")


@pytest.fixture(scope="module")
def ada(server) -> Account:
    return create_account(server, "ada")


@pytest.fixture(scope="module")
def bob(server) -> Account:
    return create_account(server, "bob")


def owned_objects(account: Account, threads: int = 3) -> dict[str, str]:
    """Threads with a complete answer each; the ids of the last thread and its stream."""
    for index in range(threads):
        thread = account.api("POST", "/api/v1/threads", json={"title": f"{account.name} {index}"})
        assert thread.status_code == 201, thread.text
        thread_id = thread.json()["thread"]["id"]
        reply = account.api("POST", f"/api/v1/threads/{thread_id}/messages",
                            json={"content": f"secret of {account.name} #{index}"})
        assert reply.status_code == 200, reply.text
    return {"thread": thread_id, "stream": reply.json()["response"]["stream_id"],
            "key": account.key_id}


def snapshot(account: Account) -> dict:
    """Everything the account can see of its own data."""
    threads = account.api("GET", "/api/v1/threads").json()["threads"]
    return {"threads": threads,
            "messages": {t["id"]: account.api("GET", f"/api/v1/threads/{t['id']}/messages")
                         .json()["messages"] for t in threads},
            "keys": account.api("GET", "/api/v1/keys").json()["keys"]}


def call(account: Account | None, method: str, template: str, ids: dict[str, str],
         body: dict | None, server=None, **headers: str):
    path = template.format(**ids)
    if account is None:
        return server.api(method, path, json=body, headers=headers)
    return account.api(method, path, json=body, headers=headers)


def test_another_users_objects_are_not_found_and_stay_untouched(ada, bob):
    adas, bobs = owned_objects(ada), owned_objects(bob)
    before = snapshot(ada)

    for method, template, body in BY_ID:
        foreign = call(bob, method, template, adas, body)
        missing = call(bob, method, template, MISSING, body)
        assert foreign.status_code == missing.status_code == 404, (method, template, foreign.text)
        assert foreign.json()["error"]["code"] == missing.json()["error"]["code"]

    assert snapshot(ada) == before  # nothing changed, nothing deleted, the key still works
    listed = {t["id"] for t in bob.api("GET", "/api/v1/threads").json()["threads"]}
    assert bobs["thread"] in listed and not listed & {t["id"] for t in before["threads"]}
    assert [k["id"] for k in bob.api("GET", "/api/v1/keys").json()["keys"]] == [bob.key_id]
    assert bob.api("GET", "/api/v1/me").json()["user"]["name"] == "bob"


def test_a_running_answer_cannot_be_stopped_or_read_by_another_user(ada, bob, fake_openai):
    body = fixture("openai/text_with_usage.sse")  # in two halves, 1.5 s apart
    fake_openai.script("accounts-slow", Reply(body, chunk_size=len(body) // 2 + 1, delay=1.5))
    thread_id = ada.api("POST", "/api/v1/threads", json={}).json()["thread"]["id"]
    response = ada.server.api("POST", f"/api/v1/threads/{thread_id}/messages/stream",
                              json={"content": "hi", "model": "openai/accounts-slow"},
                              headers=ada.auth, stream=True)
    events = read_stream(response)
    stream_id = next(events).data["stream_id"]

    assert bob.api("POST", f"/api/v1/streams/{stream_id}/cancel").status_code == 404
    assert bob.api("GET", f"/api/v1/streams/{stream_id}/events").status_code == 404
    done = next(e for e in events if e.event == "done")
    assert done.data["status"] == "complete"


@pytest.fixture(scope="module")
def adas_thread(ada) -> dict[str, str]:
    return owned_objects(ada, threads=1)


@pytest.mark.parametrize("credential", ["none", "wrong", "not-bearer", "expired", "revoked"])
def test_every_route_refuses_missing_and_bad_credentials(server, ada, adas_thread, credential):
    ids = adas_thread
    headers = {"none": {}, "wrong": {"Authorization": "Bearer sk-sluice-not-a-key"},
               "not-bearer": {"Authorization": "Basic YWRhOnB3"}}.get(credential)
    if headers is None:
        key_id, secret = new_key(server, "ada", "--expires-in-days", "0.00001")  # < 1 s
        if credential == "revoked":
            key_id, secret = new_key(server, "ada")
            assert ada.api("GET", "/api/v1/me", headers={"Authorization": f"Bearer {secret}"}
                           ).status_code == 200
            assert server.cli("keys", "revoke", key_id).returncode == 0
        time.sleep(1)
        headers = {"Authorization": f"Bearer {secret}"}
    before = snapshot(ada)

    for method, template, body in [*COLLECTIONS, *BY_ID]:
        answer = call(None, method, template, ids, body, server, **headers)
        assert answer.status_code == 401, (method, template, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(ada) == before


def test_a_key_revoked_through_the_api_stops_working_at_the_next_request(server, ada):
    key_id, secret = new_key(server, "ada", "--name", "short-lived")
    headers = {"Authorization": f"Bearer {secret}"}
    assert server.api("GET", "/api/v1/threads", headers=headers).status_code == 200

    assert ada.api("DELETE", f"/api/v1/keys/{key_id}").status_code == 204
    assert server.api("GET", "/api/v1/threads", headers=headers).status_code == 401
    listed = {k["id"]: k for k in ada.api("GET", "/api/v1/keys").json()["keys"]}
    assert listed[key_id]["revoked_at"] is not None and "secret" not in listed[key_id]


def test_a_key_made_on_the_api_is_shown_once_and_works(ada):
    made = ada.api("POST", "/api/v1/keys", json={"name": "laptop", "expires_in_days": 30})
    assert made.status_code == 201
    secret, key = made.json()["secret"], made.json()["key"]
    assert secret.startswith("sk-sluice-") and secret.startswith(key["prefix"])
    assert key["expires_at"] is not None
    me = ada.server.api("GET", "/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["user"]["name"] == "ada"
    assert secret not in ada.api("GET", "/api/v1/keys").text


def test_a_key_limited_to_some_models_may_not_use_others(server, ada):
    _, secret = new_key(server, "ada", "--model", "demo/echo")
    headers = {"Authorization": f"Bearer {secret}"}
    thread_id = server.api("POST", "/api/v1/threads", json={}, headers=headers
                           ).json()["thread"]["id"]
    allowed = server.api("POST", f"/api/v1/threads/{thread_id}/messages", headers=headers,
                         json={"content": "hi", "model": "demo/echo"})
    refused = server.api("POST", f"/api/v1/threads/{thread_id}/messages", headers=headers,
                         json={"content": "hi", "model": "openai/gpt-4o-mini"})
    assert allowed.status_code == 200
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    assert len(server.api("GET", f"/api/v1/threads/{thread_id}/messages",
                          headers=headers).json()["messages"]) == 2  # the refusal stored nothing


def test_the_cookie_session_needs_its_csrf_token_to_change_anything(ada):
    browser, token = ada.browser()
    url = ada.server.url
    refused = browser.post(url + "/api/v1/threads", json={"title": "forged"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    titles = [t["title"] for t in browser.get(url + "/api/v1/threads").json()["threads"]]
    assert "forged" not in titles  # reading needs no token; the refused POST made nothing

    made = browser.post(url + "/api/v1/threads", json={"title": "mine"},
                        headers={"X-CSRF-Token": token})
    assert made.status_code == 201
    assert browser.post(url + "/logout", headers={"X-CSRF-Token": token}).status_code == 204
    assert browser.get(url + "/api/v1/threads").status_code == 401


def test_the_page_sends_a_signed_out_browser_to_sign_in(server):
    page = server.api("GET", "/", allow_redirects=False)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert server.api("GET", "/login").status_code == 200
    assert server.api("GET", "/healthz").status_code == 200


def test_signing_in_with_a_wrong_password_or_name_says_the_same(server, ada):
    wrong = server.api("POST", "/login", json={"name": "ada", "password": "not it at all"})
    nobody = server.api("POST", "/login", json={"name": "nobody", "password": "not it at all"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()
    assert "sluice_session" not in wrong.cookies


def test_the_session_cookie_is_httponly_and_samesite(ada):
    browser, _ = ada.browser()
    cookie = next(c for c in browser.cookies if c.name == "sluice_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"


def test_the_operator_cli_manages_users_and_keys(server, ada):
    again = server.cli("users", "create", "ada", "--password-stdin", input="another password\n")
    assert again.returncode != 0 and "already a user" in again.stderr
    listed = server.cli("keys", "list", "--user", "ada")
    assert listed.returncode == 0 and ada.key_id in listed.stdout
    assert ada.key not in listed.stdout and ada.key[:14] in listed.stdout
    assert server.cli("keys", "revoke", "key_doesnotexist").returncode != 0


def test_guessing_a_password_is_stopped_after_ten_tries_a_minute(server):
    made = server.cli("users", "create", "gus", "--password-stdin", input="the real password\n")
    assert made.returncode == 0
    tries = [server.api("POST", "/login", json={"name": "gus", "password": f"guess {n}"})
             for n in range(11)]
    assert [t.status_code for t in tries] == [401] * 10 + [429]
    assert int(tries[-1].headers["Retry-After"]) >= 1
    right = server.api("POST", "/login", json={"name": "gus", "password": "the real password"})
    assert right.status_code == 429  # even the right password waits out the minute
