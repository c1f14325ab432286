"""A backend's webhook endpoint for tests: verifies each delivery with the independent
`standardwebhooks` package, answers as scripted, and keeps what it got."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .fake_upstream import QuietHTTPServer


@dataclass
class Delivery:
    webhook_id: str
    verified: bool
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    secret: str | None = None
    statuses: list[int] = field(default_factory=list)  # answers in order; then 204
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                verified = False
                if receiver.secret:
                    try:
                        Webhook(receiver.secret).verify(raw, dict(self.headers))
                        verified = True
                    except WebhookVerificationError:
                        pass
                receiver.deliveries.append(Delivery(self.headers.get("webhook-id", ""),
                                                    verified, json.loads(raw)))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/sluice"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def unique(self) -> dict[str, Delivery]:
        """Deliveries by webhook-id, as a receiver that dedupes keeps them (the last)."""
        return {d.webhook_id: d for d in self.deliveries}

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()
