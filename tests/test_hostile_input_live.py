"""Hostile input against a live gunicorn + gevent Sluice: generated bodies nested too
deep, text that cannot be stored, odd ids and event ids, broken HTTP framing and
oversized bodies. Every one must get a JSON 4xx, change nothing stored, and leave no
traceback in the server's log.
"""
from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .hostile import (NoAnswer, answered_thread, assert_json_error, assert_refused,
                      nothing_changes, raw_request)

# Generated cases against a running server: no deadline (a request takes what it
# takes), a fixed number of examples, and no example database left in the checkout.
# In CI the same examples every run, so a red CI always means a change did it; on a
# developer's machine new ones each run, to keep looking.
LIVE = settings(max_examples=40, deadline=None, database=None,
                derandomize=os.environ.get("CI") == "true",
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="session")
def hostile_server(start_server):
    return start_server()


@pytest.fixture(scope="session")
def probe(hostile_server):
    """A thread with one finished answer, which every refused request must leave alone."""
    return answered_thread(hostile_server)


@pytest.fixture
def unchanged(hostile_server, probe):
    with nothing_changes(hostile_server, probe):
        yield


def post_raw(server, path: str, body: bytes, method: str = "POST") -> requests.Response:
    return requests.request(method, server.url + path, data=body, timeout=30,
                            headers={"Content-Type": "application/json"})


def body_paths(probe) -> list[tuple[str, str]]:
    """(method, path) of every route that takes a JSON body."""
    thread = f"/api/v1/threads/{probe['thread_id']}"
    return [("POST", "/api/v1/threads"), ("PATCH", thread), ("POST", thread + "/messages"),
            ("POST", thread + "/messages/stream")]


# Where a value goes in a request body: every field, tool definitions and results.
FIELD_TEMPLATES = [
    '{"title": %s}',
    '{"model": %s}',
    '{"system": %s}',
    '{"content": %s}',
    '{"content": "hi", "model": %s}',
    '{"content": "hi", "tools": [{"type": "function", "function": {"name": %s}}]}',
    '{"content": "hi", "tools": [{"type": "function", "function": '
    '{"name": "f", "description": %s}}]}',
    '{"content": "hi", "tools": [{"type": "function", "function": '
    '{"name": "f", "parameters": {"type": "object", "properties": {"x": %s}}}}]}',
    '{"tool_results": [{"tool_call_id": %s, "content": "x"}]}',
    '{"tool_results": [{"tool_call_id": "call_1", "content": %s}]}',
    '{"content": "hi", "unknown_field": %s}',
    '%s',
]


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


@LIVE
@given(depth=st.one_of(st.integers(65, 2_000), st.sampled_from([50_000, 100_000])),
       kind=st.sampled_from(["array", "object"]),
       template=st.sampled_from(FIELD_TEMPLATES), route=st.integers(0, 3))
def test_deep_nesting_in_any_field_is_a_400(hostile_server, probe, unchanged,
                                            depth, kind, template, route):
    method, path = body_paths(probe)[route]
    body = (template % nested(depth, kind)).encode()
    response = post_raw(hostile_server, path, body, method)
    assert assert_refused(response, {400}) in ("too_deeply_nested", "invalid_json")


# Text no database can store, as JSON escapes and as raw bytes in the body.
BAD_ESCAPES = ["\\ud800", "\\udfff", "\\udc00\\ud800", "abc\\ud83d", "\\ud83dx", "\\u0000",
               "a\\u0000b"]
BAD_BYTES = [b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xc0\xaf", b"\xff", b"\x80",
             b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98"]
PLAIN = st.text(st.characters(min_codepoint=32, max_codepoint=126,
                              exclude_characters='"\\'), max_size=20)


@LIVE
@given(before=PLAIN, after=PLAIN, template=st.sampled_from(FIELD_TEMPLATES[:-1]),
       bad=st.one_of(st.sampled_from(BAD_ESCAPES).map(str.encode), st.sampled_from(BAD_BYTES)),
       route=st.integers(0, 3), as_key=st.booleans())
def test_unstorable_text_in_any_string_is_a_400(hostile_server, probe, unchanged, before,
                                                after, template, bad, route, as_key):
    method, path = body_paths(probe)[route]
    text = b'"' + before.encode() + bad + after.encode() + b'"'
    if as_key:
        body = b'{"content": "hi", ' + text + b': 1}'
    else:
        body = (template % "@@").encode().replace(b"@@", text)
    response = post_raw(hostile_server, path, body, method)
    assert assert_refused(response, {400}) in ("invalid_text", "invalid_encoding")


@LIVE
@given(number=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400",
                               "1" * 5000]),
       template=st.sampled_from(FIELD_TEMPLATES), route=st.integers(0, 3))
def test_numbers_json_cannot_carry_are_a_400(hostile_server, probe, unchanged,
                                            number, template, route):
    method, path = body_paths(probe)[route]
    response = post_raw(hostile_server, path, (template % number).encode(), method)
    assert assert_refused(response, {400}) in ("invalid_json", "invalid_number")


DIGITS = "0123456789²³¹٣०१𝟘９"


@LIVE
@given(raw=st.one_of(st.text(DIGITS, min_size=1, max_size=40),
                     st.integers(19, 5000).map(lambda n: "9" * n),
                     st.text(max_size=30)),
       as_header=st.booleans())
def test_event_ids_are_ascii_digits_or_a_400(hostile_server, probe, unchanged, raw, as_header):
    path = f"/api/v1/streams/{probe['stream_id']}/events"
    if as_header:
        if not raw.strip():
            return  # an empty Last-Event-ID means "from the start"
        if any(c in raw for c in "\r\n\0") or raw != raw.lstrip():
            return  # no HTTP client sends such a header (requests refuses to)
        response = requests.get(hostile_server.url + path, timeout=30,
                                headers={"Last-Event-ID": raw.encode("utf-8")})
    else:
        response = requests.get(hostile_server.url + path + "?after=" + quote(raw), timeout=30)
    value = raw.strip()
    if value == "" or (value.isascii() and value.isdigit() and len(value) <= 18):
        assert response.status_code in (200, 204), response.text
    else:  # control characters in a header, or a URL over the server's limit, are
        # refused by the server's parser
        assert assert_refused(response, {400, 414}) in (
            "invalid_event_id", "malformed_request", "uri_too_long")


@LIVE
@given(raw_id=st.text(min_size=1, max_size=300),
       route=st.sampled_from([("GET", "/api/v1/threads/{}"), ("PATCH", "/api/v1/threads/{}"),
                              ("DELETE", "/api/v1/threads/{}"),
                              ("GET", "/api/v1/threads/{}/messages"),
                              ("POST", "/api/v1/threads/{}/messages"),
                              ("GET", "/api/v1/streams/{}/events"),
                              ("POST", "/api/v1/streams/{}/cancel")]))
def test_any_id_in_a_path_is_a_404_or_400(hostile_server, unchanged, raw_id, route):
    method, template = route
    response = requests.request(method, hostile_server.url + template.format(quote(raw_id, "")),
                                json={"content": "hi", "title": "x"}, timeout=30,
                                allow_redirects=False)
    if 300 <= response.status_code < 400:  # e.g. "." or ".." resolved into another path
        return
    assert_refused(response, {400, 404, 405, 414})


def chunked(body: bytes, path: str = "/api/v1/threads", size: int = 4096) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def test_an_oversized_chunked_body_is_a_413(hostile_server, probe, unchanged):
    body = json.dumps({"title": "x", "system": "y" * (1024 * 1024 + 10)}).encode()
    for path in ("/api/v1/threads", f"/api/v1/threads/{probe['thread_id']}/messages"):
        answer = raw_request(hostile_server, chunked(body, path))
        assert assert_json_error(answer.status, answer.headers["content-type"], answer.body,
                                 {413}) == "payload_too_large"


def test_an_oversized_body_with_content_length_is_a_413(hostile_server, unchanged):
    response = post_raw(hostile_server, "/api/v1/threads",
                        json.dumps({"system": "y" * (1024 * 1024 + 10)}).encode())
    assert assert_refused(response, {413}) == "payload_too_large"


def test_a_chunked_body_within_the_limit_is_read_whole(hostile_server):
    body = json.dumps({"title": "chunked", "system": "z" * 200_000}).encode()
    answer = raw_request(hostile_server, chunked(body, size=1000))
    assert answer.status == 201, answer.body[:300]
    thread = answer.json()["thread"]
    assert thread["system"] == "z" * 200_000
    hostile_server.api("DELETE", f"/api/v1/threads/{thread['id']}")


HEAD = (b"POST /api/v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n")
MALFORMED_HTTP = {
    "bad chunk size": HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "negative chunk size": HEAD + b"Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n",
    "huge chunk size": HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 40 + b"\r\n{}\r\n",
    "missing chunk terminator": HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
    "chunk extension garbage": HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;\x01\r\n{}\r\n0\r\n\r\n",
    "unknown transfer coding": HEAD + b"Transfer-Encoding: gzip, chunked, foo\r\n\r\n0\r\n\r\n",
    "length and chunked": HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n",
    "two lengths": HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ",
    "length not a number": HEAD + b"Content-Length: 2x\r\n\r\n{}",
    "invalid request line": b"POST /api/v1/threads HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n",
    "invalid method": b"P@ST /api/v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "invalid version": b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header\r\n\r\n",
    "obsolete folding": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n  folded\r\n\r\n",
    "URL too long": b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "header too long": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 9000 +
                       b"\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                        b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n",
}


@pytest.mark.parametrize("case", MALFORMED_HTTP, ids=list(MALFORMED_HTTP))
def test_malformed_http_gets_a_json_error(hostile_server, unchanged, case):
    # Sent whole, then the sending side closed: a body that promises more than it
    # carries ends there instead of keeping the server waiting.
    answer = raw_request(hostile_server, MALFORMED_HTTP[case], half_close=True)
    assert_json_error(answer.status, answer.headers.get("content-type", ""), answer.body,
                      {400, 413, 414, 431})


@LIVE
@given(size_line=st.one_of(st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                   min_size=1, max_size=30),
                           st.binary(min_size=1, max_size=12)),
       cut=st.integers(0, 12))
def test_generated_chunk_framing_never_crashes(hostile_server, unchanged, size_line, cut):
    line = size_line.encode() if isinstance(size_line, str) else size_line
    line = line.replace(b"\r", b"").replace(b"\n", b"") or b"z"
    body = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + line + b"\r\n{}\r\n0\r\n\r\n"
    try:
        answer = raw_request(hostile_server, body[:len(body) - cut], half_close=True)
    except NoAnswer:
        return  # the request ended before it was whole: nothing to answer
    if answer.status < 300:
        assert answer.status == 201  # a framing that happened to be valid
        hostile_server.api("DELETE", f"/api/v1/threads/{answer.json()['thread']['id']}")
        return
    assert_json_error(answer.status, answer.headers.get("content-type", ""), answer.body,
                      {400, 413})
