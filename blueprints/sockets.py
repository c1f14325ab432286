"""Socket.IO events at `/socket.io/` (the README's WebSocket section): the requests of
the HTTP API, each acknowledged with ids or `{"error": {…}}`, and the streams they
start or resume followed on the same socket."""
from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask_socketio import Namespace
from socketio.exceptions import ConnectionRefusedError as Refused

from services.errors import ApiError
from services.metrics import recorder
from services.ratelimit import count_request
from services.sockets import REQUESTS, Reply, connect, error_payload, socket_user, sockets
from services.storage import request_session
from services.streaming import streaming

logger = logging.getLogger(__name__)
_RESERVED = frozenset({"connect", "disconnect"})


class SocketEvents(Namespace):
    """One namespace, `/`. Flask-SocketIO calls each handler in a request context made
    from the socket's handshake, so the services run as they do for HTTP."""

    def on_connect(self, auth: Any = None) -> None:
        try:
            connect(auth)
        except ApiError as exc:
            raise Refused(exc.message, error_payload(exc)) from None
        recorder().socket_opened()

    def on_disconnect(self, reason: Any = None) -> None:
        sockets().followers.stop_all(request.sid)
        recorder().socket_closed()

    def on_send_message(self, data: Any = None, *_: Any) -> Reply | dict[str, Any]:
        return _serve("send_message", data)

    def on_run_operation(self, data: Any = None, *_: Any) -> Reply | dict[str, Any]:
        return _serve("run_operation", data)

    def on_subscribe(self, data: Any = None, *_: Any) -> Reply | dict[str, Any]:
        return _serve("subscribe", data)

    def on_cancel(self, data: Any = None, *_: Any) -> Reply | dict[str, Any]:
        return _serve("cancel", data)

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Acknowledge first, then follow: python-socketio sends the acknowledgement as
        soon as this returns, before the follower (a greenlet) first runs."""
        if event in _RESERVED:
            return super().trigger_event(event, *args)
        if event not in REQUESTS:
            return {"error": {"code": "unknown_event", "status": 404,
                              "message": f"There is no event {str(event)[:100]!r}; send one of "
                                         + ", ".join(REQUESTS) + "."}}
        answer = super().trigger_event(event, *args)
        if isinstance(answer, Reply):
            if answer.then is not None:
                answer.then()
            return answer.ack
        return answer


def _serve(name: str, data: Any) -> Reply | dict[str, Any]:
    answer = _answer(name, data)
    recorder().socket_answered(name, 200 if isinstance(answer, Reply)
                               else answer["error"]["status"])
    return answer


def _answer(name: str, data: Any) -> Reply | dict[str, Any]:
    user = socket_user()
    try:
        count_request(user)
        return REQUESTS[name](request_session(), streaming(), sockets().followers,
                              request.sid, user, data)
    except ApiError as exc:
        return {"error": error_payload(exc)}
    except Exception:  # noqa: BLE001 - the socket gets an answer, the log the details
        logger.exception("socket event %s failed", name)
        return {"error": {"code": "internal_error", "status": 500,
                          "message": "Something went wrong on the server."}}
