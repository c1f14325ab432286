"""Delivery attempts against a real local receiver: what arrives, how each answer is
judged, and that no answer (or lack of one) can hold an attempt past its bounds.

The receiver listens on loopback, so these run with private hosts allowed; the
name `hooks.test` resolves (from the `net` table) to 127.0.0.1, and the request
arriving with `Host: hooks.test:<port>` shows the connection went to the pinned
address while the receiver still saw the name.
"""
from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from services.webhooks import (DeliveryAttempt, check_url, new_message_id, new_secret, post,
                               resolve, signature_headers)
from services.webhooks.sender import parse_retry_after

BODY = json.dumps({"job": {"id": "job_1", "status": "complete"}}).encode()


@dataclass
class Received:
    path: str
    headers: HTTPMessage  # as sent: repeated headers stay repeated
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers with `answer(handler)` and keeps
    what it received; `hung_up` is set when a client closes while it writes."""

    answer: Callable[[BaseHTTPRequestHandler], None]
    received: list[Received] = field(default_factory=list)
    hung_up: threading.Event = field(default_factory=threading.Event)
    port: int = 0


def reply(status: int, body: bytes = b"", **headers: str) -> Callable:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(body)
    return answer


@pytest.fixture
def serve(net) -> Iterator[Callable[..., Receiver]]:
    """Starts receivers (plain, or TLS with a given context) reachable as `hooks.test`."""
    net.resolves("hooks.test", "127.0.0.1")
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable, tls: ssl.SSLContext | None = None) -> Receiver:
        receiver = Receiver(answer)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
        server.daemon_threads = True
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        receiver.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append(Received(self.path, self.headers, body))
            try:
                receiver.answer(self)
            except (BrokenPipeError, ConnectionResetError):
                receiver.hung_up.set()
            self.close_connection = True
    return Handler


def deliver(receiver: Receiver, scheme: str = "http", secret: str | None = None,
            **limits: float) -> DeliveryAttempt:
    url = f"{scheme}://hooks.test:{receiver.port}/hooks/in?source=sluice"
    pinned = resolve(check_url(url, allow_private=True), allow_private=True)
    headers = signature_headers([secret or new_secret()], new_message_id(),
                                int(time.time()), BODY)
    return post(pinned, BODY, headers, **limits)


def test_a_2xx_answer_is_a_delivery_of_exactly_what_was_signed(serve, net):
    receiver = serve(reply(204))
    secret = new_secret()
    attempt = deliver(receiver, secret=secret)

    assert (attempt.delivered, attempt.status_code, attempt.error) == (True, 204, None)
    assert not attempt.retryable and attempt.duration_ms >= 0
    [request] = receiver.received
    assert request.path == "/hooks/in?source=sluice"
    assert request.body == BODY
    assert request.headers["Host"] == f"hooks.test:{receiver.port}"
    assert request.headers["content-type"] == "application/json"
    Webhook(secret).verify(request.body, dict(request.headers))
    assert net.lookups == ["hooks.test"]


def test_the_host_sent_is_always_the_targets(serve):
    receiver = serve(reply(200))
    url = f"http://hooks.test:{receiver.port}/"
    pinned = resolve(check_url(url, allow_private=True), allow_private=True)
    post(pinned, BODY, {"host": "other.example", "X-Job": "job_1"})
    [request] = receiver.received
    assert request.headers.get_all("Host") == [f"hooks.test:{receiver.port}"]
    assert request.headers["X-Job"] == "job_1"
    assert request.headers["User-Agent"].startswith("Sluice")


def test_the_start_of_the_receivers_answer_is_kept(serve):
    attempt = deliver(serve(reply(200, "reçu ".encode() * 200 + b"\xff")))
    assert attempt.delivered
    assert attempt.response_excerpt == ("reçu " * 100)[:500]


@pytest.mark.parametrize(("status", "retryable"), [
    (500, True), (503, True), (408, True), (429, True),
    (400, False), (401, False), (404, False), (410, False),
])
def test_a_failed_answer_says_whether_to_try_again(serve, status, retryable):
    attempt = deliver(serve(reply(status, b'{"error": "nope"}')))
    assert (attempt.delivered, attempt.status_code, attempt.retryable) == (
        False, status, retryable)
    assert attempt.error.startswith(f"the receiver answered {status}")
    assert attempt.response_excerpt == '{"error": "nope"}'


def test_retry_after_in_seconds_is_reported(serve):
    attempt = deliver(serve(reply(429, Retry_After="7")))
    assert (attempt.retryable, attempt.retry_after) == (True, 7.0)


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0),
    ("999999999999999999999999", 21600.0),
    ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ("Thu, 22 Oct 2015 07:28:00 GMT", 21600.0),
    ("soon", None), ("-5", None), ("1.5", None), ("", None), (None, None),
])
def test_retry_after_is_read_as_seconds_or_a_date_and_capped(header, seconds):
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(header, now=now) == seconds


def test_a_redirect_is_not_followed(serve, net):
    receiver = serve(reply(302, Location="http://169.254.169.254/latest/meta-data/"))
    attempt = deliver(receiver)
    assert (attempt.delivered, attempt.status_code, attempt.retryable) == (False, 302, True)
    assert attempt.error == ("redirects are not followed "
                             "(Location: http://169.254.169.254/latest/meta-data/)")
    assert len(receiver.received) == 1
    assert net.take_blocked() == []  # and the fixture's teardown checks it again


def test_a_receiver_that_never_answers_costs_the_read_timeout(serve):
    answered = threading.Event()
    attempt = deliver(serve(lambda handler: answered.wait(10)), read_timeout=0.5)
    answered.set()
    assert (attempt.delivered, attempt.status_code, attempt.retryable) == (False, None, True)
    assert "went silent for more than 0.5s" in attempt.error
    assert attempt.duration_ms < 5000


def test_a_receiver_that_dribbles_is_cut_at_the_total_time(serve):
    def dribble(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for index in range(100):  # a header every 0.1 s: never silent for the read timeout
            handler.wfile.write(b"X-Slow-%d: 1\r\n" % index)
            handler.wfile.flush()
            time.sleep(0.1)

    attempt = deliver(serve(dribble), read_timeout=1.0, total_timeout=1.0)
    assert (attempt.delivered, attempt.status_code, attempt.retryable) == (False, None, True)
    assert "did not answer within the total time of 1s" in attempt.error
    assert attempt.duration_ms < 5000


def test_an_endless_answer_is_read_only_up_to_the_limit(serve):
    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(10 ** 12))
        handler.end_headers()
        while True:
            handler.wfile.write(b"x" * 65536)

    receiver = serve(endless)
    attempt = deliver(receiver, max_response_bytes=100_000, total_timeout=60)
    assert attempt.delivered and attempt.response_excerpt == "x" * 500
    assert receiver.hung_up.wait(10), "Sluice kept the endless answer's connection open"
    assert attempt.duration_ms < 30_000


def test_a_refused_connection_may_be_tried_again(net):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused
    try:
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        attempt = post(resolve(check_url(url, True), True), BODY, {})
    finally:
        closed.close()
    assert (attempt.delivered, attempt.status_code, attempt.retryable) == (False, None, True)
    assert attempt.error.startswith("cannot connect to 127.0.0.1:")
    assert "refused" in attempt.error


def test_a_host_that_does_not_accept_costs_the_connect_timeout(net, unconnectable_port):
    url = f"http://127.0.0.1:{unconnectable_port}/"
    attempt = post(resolve(check_url(url, True), True), BODY, {}, connect_timeout=0.5)
    assert attempt.retryable and attempt.status_code is None
    assert "no connection within 0.5s" in attempt.error
    assert attempt.duration_ms < 5000


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA, and certificates it signed for hooks.test and for other.test."""
    # Debian's openssl is part of every machine this suite runs on: missing, it fails.
    assert shutil.which("openssl"), "the openssl command is needed to make test certificates"
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=Sluice test CA", "-keyout", "ca.key", "-out", "ca.pem")
    for name in ("hooks.test", "other.test"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")
        (folder / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.pem")
    return folder


def tls_for(certificates: Path, name: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / f"{name}.pem", certificates / f"{name}.key")
    return context


def test_https_verifies_the_certificate_for_the_name_not_the_address(
        serve, certificates, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))  # trust the test CA
    receiver = serve(reply(200, b"ok"), tls=tls_for(certificates, "hooks.test"))
    attempt = deliver(receiver, scheme="https")
    assert attempt.delivered and attempt.response_excerpt == "ok"
    assert receiver.received[0].headers["Host"] == f"hooks.test:{receiver.port}"


def test_https_to_a_certificate_for_another_name_is_refused(serve, certificates, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    receiver = serve(reply(200, b"ok"), tls=tls_for(certificates, "other.test"))
    attempt = deliver(receiver, scheme="https")
    assert (attempt.delivered, attempt.status_code, attempt.retryable) == (False, None, True)
    assert "hooks.test" in attempt.error and "other.test" in attempt.error
    assert receiver.received == []
