"""Requests generated from the OpenAPI description, sent to a live gunicorn + gevent Sluice
with accounts on: every answer must be one the description documents — no 5xx, a
documented status and content type, and a body that matches its schema (each stream
event too).

The description is loaded from the code that serves it (services/openapi), so each
operation is a test of its own. Server logs must stay free of tracebacks
(`start_server` checks them at the end of the session). Both backends run: PostgreSQL
holds strings to their column lengths where SQLite does not, and Redis mode serves
streams and cancels along paths of its own.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from services.openapi import build_document

from .accounts import Account, create_account
from .fake_upstream import Reply, fixture
from .live_server import LiveServer
from .sse_client import read_stream

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Per operation: enough to reach every branch of a small route, few enough for the whole
# file to take about a minute on two cores. The same cases on every CI run (so a red CI
# means a change did it), new ones on a developer's machine.
FUZZ = settings(max_examples=20, deadline=None, database=None,
                derandomize=os.environ.get("CI") == "true",
                suppress_health_check=list(HealthCheck))


schema = schemathesis.openapi.from_dict(build_document())
# Sequences follow the description's own links only. Links schemathesis would infer from
# the answers' shapes include `GET /api/v1/keys` -> `DELETE /api/v1/keys/{key_id}`, which
# revokes the key the test authenticates with, and every later request would be a 401.
schema.config.phases.stateful.inference.algorithms = []
# Read every stream to its `done` (schemathesis stops after 20 events by default), so each
# event is checked, the last ones too, and no answer goes on after its client has left.
schema.config.max_stream_events = 10_000


# Path parameter -> the id of an object that exists, made afresh for each test by
# `real_objects`. Generated ids almost never exist, so without these every route that
# takes one would only ever answer 404.
REAL_IDS: dict[str, str] = {}


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None
                            ) -> st.SearchStrategy[dict[str, Any] | None]:
    """Half of the cases address real objects: a thread with an answer, its stream, a key."""
    real = {name: REAL_IDS[name] for name in path_parameters or () if name in REAL_IDS}
    if not real:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **real}])


@pytest.fixture(scope="module")
def fuzz_server(start_server) -> LiveServer:
    # A fast demo model: an answer takes milliseconds, so replies can be fuzzed too.
    return start_server(SLUICE_AUTH="on", SLUICE_DEMO_TOKENS_PER_SECOND="20000")


@pytest.fixture(scope="module")
def account(fuzz_server: LiveServer) -> Account:
    return create_account(fuzz_server, "fuzz")


@pytest.fixture
def real_objects(account: Account) -> Iterator[None]:
    """A thread with a finished answer, and a spare key (never the one the test uses)."""
    thread = account.api("POST", "/api/v1/threads", json={"title": "fuzzed"}).json()["thread"]
    answer = account.api("POST", f"/api/v1/threads/{thread['id']}/messages",
                         json={"content": "Something to resume and cancel"}).json()["response"]
    key = account.api("POST", "/api/v1/keys", json={"name": "spare"}).json()["key"]
    REAL_IDS.update(thread_id=thread["id"], stream_id=answer["stream_id"], key_id=key["id"])
    yield
    REAL_IDS.clear()


@schema.parametrize()
@FUZZ
def test_every_answer_is_documented(case, fuzz_server, account, real_objects):
    case.call_and_validate(base_url=fuzz_server.url, headers=account.auth, checks=CHECKS,
                           timeout=30)


def test_workflows_on_real_objects(fuzz_server, account):
    """Sequences along the description's links (a new thread, then its messages, its
    answer's stream, …), so requests reach objects that exist, not only 404s."""
    class Workflows(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": fuzz_server.url, "headers": account.auth, "timeout": 30}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflows.run(settings=settings(FUZZ, max_examples=20, stateful_step_count=8))


# Refusals generated requests do not reach, each checked against what the description
# documents for it: (method, path, request options, expected status). `{last}` is the last
# event id of the stream `{stream_id}`, an answer in the thread `{thread_id}`.
JSON = {"Content-Type": "application/json"}
REFUSALS = [
    ("GET", "/api/v1/threads", {"auth": False}, 401),
    ("POST", "/api/v1/threads", {"headers": {"Origin": "http://elsewhere.example"}}, 403),
    ("POST", "/api/v1/threads", {"cookie": True}, 403),  # the session without its CSRF token
    ("POST", "/api/v1/threads", {"data": "title=x", "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, 415),
    ("POST", "/api/v1/threads/{thread_id}/messages", {"data": b" " * (1024 * 1024 + 1),
                                                      "headers": JSON}, 413),
    ("GET", "/api/v1/threads", {"params": {"q": "x" * 9000}}, 414),
    ("GET", "/api/v1/threads", {"headers": {"X-Big": "x" * 9000}}, 431),
    ("GET", "/", {"auth": False}, 302),
    ("GET", "/api/v1/streams/{stream_id}/events", {"headers": {"Last-Event-ID": "{last}"}}, 204),
    ("POST", "/login", {"auth": False, "json": {"name": "fuzz", "password": "wrong"}}, 401),
    ("POST", "/api/v1/threads", {"limited": True, "json": {"model": "openai/unscripted"}}, 403),
    # The fake provider knows no such model: the answer fails, both messages are stored.
    ("POST", "/api/v1/threads/{thread_id}/messages", {"json": {
        "content": "Hi", "model": "openai/unscripted"}}, 502),
]


@pytest.mark.parametrize(("method", "path", "options", "status"), REFUSALS,
                         ids=[f"{m} {p} {s}" for m, p, _, s in REFUSALS])
def test_refusals_are_documented(method: str, path: str, options: dict[str, Any], status: int,
                                 fuzz_server: LiveServer, account: Account) -> None:
    thread_id = account.api("POST", "/api/v1/threads", json={}).json()["thread"]["id"]
    stream_id = account.api("POST", f"/api/v1/threads/{thread_id}/messages",
                            json={"content": "Hi"}).json()["response"]["stream_id"]
    replay = account.api("GET", f"/api/v1/streams/{stream_id}/events", stream=True)
    ids = {"thread_id": thread_id, "stream_id": stream_id}
    last = str(list(read_stream(replay))[-1].id)
    options = dict(options)
    headers = {name: value.format(last=last) for name, value in options.pop("headers", {}).items()}
    session = requests.Session()
    if options.pop("cookie", False):
        session.close()
        session, _csrf = account.browser()
    elif options.pop("limited", False):  # a key that may use demo/echo only
        secret = account.api("POST", "/api/v1/keys", json={"models": ["demo/echo"]}).json()
        headers["Authorization"] = f"Bearer {secret['secret']}"
    elif options.pop("auth", True):
        headers.update(account.auth)
    with session:  # a connection left open would hold up the server's shutdown
        response = session.request(method, fuzz_server.url + path.format(**ids), headers=headers,
                                   allow_redirects=False, timeout=30, **options)
    assert response.status_code == status, response.text
    case = operation_case(method, path, **{name: value for name, value in ids.items()
                                           if f"{{{name}}}" in path})
    # A documented 5xx (a provider failed) is what this case is for: check all but that.
    case.validate_response(response, checks=CHECKS if status < 500 else CHECKS[1:])


def test_a_running_answer_is_busy_then_cancelled_as_documented(fuzz_server, account,
                                                               fake_openai):
    """The answers only a running stream gets: `409 thread_busy` for another message,
    `202 cancelling`, and its replay ending `cancelled`."""
    body = fixture("openai/text_with_usage.sse")  # in two halves, a while apart
    fake_openai.script("fuzz-slow", Reply(body, chunk_size=len(body) // 2 + 1, delay=1.0))
    thread_id = account.api("POST", "/api/v1/threads", json={}).json()["thread"]["id"]
    messages = f"/api/v1/threads/{thread_id}/messages"
    with account.api("POST", messages + "/stream", stream=True,
                     json={"content": "Hi", "model": "openai/fuzz-slow"}) as running:
        stream_id = next(read_stream(running)).data["stream_id"]
        busy = account.api("POST", messages, json={"content": "And another thing"})
        cancel = account.api("POST", f"/api/v1/streams/{stream_id}/cancel")
    assert (busy.status_code, cancel.status_code) == (409, 202)
    assert cancel.json()["status"] == "cancelling"
    operation_case("POST", "/api/v1/threads/{thread_id}/messages", thread_id=thread_id
                   ).validate_response(busy, checks=CHECKS)
    operation_case("POST", "/api/v1/streams/{stream_id}/cancel", stream_id=stream_id
                   ).validate_response(cancel, checks=CHECKS)
    replay = operation_case("GET", "/api/v1/streams/{stream_id}/events", stream_id=stream_id
                            ).call_and_validate(base_url=fuzz_server.url, headers=account.auth,
                                                checks=CHECKS, timeout=30)
    assert '"status": "cancelled"' in replay.text


def operation_case(method: str, path: str, **path_parameters: str) -> Any:
    """A case of one described operation, to check a response that a test made itself."""
    return schema[path][method].Case(path_parameters=path_parameters)
