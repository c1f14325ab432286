"""gunicorn's gevent worker, answering the requests it cannot parse with JSON.

gunicorn answers a request line over `limit_request_line` (414), headers over their
limits (431), broken chunked framing or a malformed request line (400) itself,
before Sluice sees the request, with an HTML page. Every Sluice error is
`{"error": {"code", "message"}}`, so this worker writes those answers as JSON.
"""
from __future__ import annotations

import json

from gunicorn.http import errors
from gunicorn.util import write_nonblock
from gunicorn.workers.ggevent import GeventWorker

# gunicorn's exception -> (status, reason, code); anything else it reports is a 400.
_PROTOCOL_ERRORS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long"),
    (errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "headers_too_large"),
    (errors.ExpectationFailed, 417, "Expectation Failed", "expectation_failed"),
    # HTTP suggests 501 here; it is the client's request that is wrong, so a 4xx.
    (errors.UnsupportedTransferCoding, 400, "Bad Request", "unsupported_transfer_coding"),
    (errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden"),
    (errors.ConfigurationProblem, 500, "Internal Server Error", "server_misconfigured"),
)


def protocol_error(exc: BaseException) -> tuple[int, str, str] | None:
    """(status, reason, code) for a request gunicorn could not parse; None if `exc` is
    not about the request (a fault of the application or the server)."""
    if isinstance(exc, (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)):
        return None
    for kind, status, reason, code in _PROTOCOL_ERRORS:
        if isinstance(exc, kind):
            return status, reason, code
    if isinstance(exc, (errors.ParseException, errors.NoMoreData)):
        return 400, "Bad Request", "malformed_request"
    return None


def json_error_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying a JSON error; the connection closes after."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class SluiceGeventWorker(GeventWorker):
    """`worker_class` for Sluice: gevent, with JSON answers to unparsable requests."""

    def handle_error(self, req, client, addr, exc):  # noqa: ANN001 - gunicorn's signature
        known = protocol_error(exc)
        if known is None:
            return super().handle_error(req, client, addr, exc)
        status, reason, code = known
        message = f"The request could not be read: {str(exc)[:200] or reason}."
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            write_nonblock(client, json_error_response(status, reason, code, message))
        except OSError:
            self.log.debug("Failed to send the error answer.")
        return None
