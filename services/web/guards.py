"""Checks every request passes before its view, and headers every response carries.

- `Host` must be one this server answers to (`SLUICE_ALLOWED_HOSTS`): a page on
  another site that points its own name at 127.0.0.1 (DNS rebinding) is refused.
- A state-changing request from a browser must come from this origin or one in
  `SLUICE_ALLOWED_ORIGINS`: a form on another site cannot drive Sluice.
- A request body must be JSON (`415` otherwise), so a cross-site `text/plain`
  form, which browsers send without asking, is never parsed as one. A route marked
  `accepts_upload` takes `multipart/form-data` instead (and only that); the origin
  check above is what keeps other sites' forms away from it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request

from ..config import LOOPBACK_HOSTS
from ..errors import ApiError

View = TypeVar("View", bound=Callable[..., Any])
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Browsers send this on every request; "same-site" is a sibling subdomain, not us.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    # Remote images in answers load only when the user clicks (static/js/safe-html.js).
    "img-src 'self' data: https: http:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "frame-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def host_name(host: str) -> str:
    """The name part of a `Host` value: no port, lower case, IPv6 without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """`*` allows any host; `.example.com` allows it and every subdomain."""
    name = host_name(host)
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


def _check_host() -> None:
    """Loopback names are always served: a browser sends them only when its user typed
    them, never for a page whose own name was pointed at this machine."""
    host = request.environ.get("HTTP_HOST")
    if host is None:
        return  # HTTP/1.0 without Host: nothing a browser on another site can send
    if not host_allowed(host, (*LOOPBACK_HOSTS, *current_app.config["SLUICE_ALLOWED_HOSTS"])):
        raise ApiError(400, "invalid_host",
                       f"This server does not answer to the host {host_name(host)[:100]!r}; "
                       "add it to SLUICE_ALLOWED_HOSTS to serve it.")


def _check_origin() -> None:
    if request.method in _SAFE_METHODS:
        return
    _check_origin_of_change()


def _check_origin_of_change() -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        if request.headers.get("Sec-Fetch-Site", "none") not in _OWN_FETCH_SITES:
            raise _foreign_origin("another site")
        return
    if origin in current_app.config["SLUICE_ALLOWED_ORIGINS"]:
        return
    if origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower():
        raise _foreign_origin(origin[:100])


def check_socket_handshake() -> None:
    """A WebSocket handshake is a GET that a page on another site can make with this
    site's cookies (browsers do not apply CORS to it), and the socket it opens changes
    things: it passes the host and origin checks of a state-changing request."""
    _check_host()
    _check_origin_of_change()


def _foreign_origin(origin: str) -> ApiError:
    return ApiError(403, "forbidden_origin",
                    f"Requests from {origin!r} may not change anything here; add the origin "
                    "to SLUICE_ALLOWED_ORIGINS to allow it.")


def _has_body() -> bool:
    length = request.environ.get("CONTENT_LENGTH", "")
    return (length not in ("", "0")) or bool(request.environ.get("wsgi.input_terminated")
                                             and request.headers.get("Transfer-Encoding"))


def accepts_upload(view: View) -> View:
    """Mark a view whose body is a `multipart/form-data` upload rather than JSON."""
    view.sluice_upload = True  # type: ignore[attr-defined]
    return view


def _check_content_type() -> None:
    if request.method in _SAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "sluice_upload", False):
        if request.mimetype != "multipart/form-data":
            raise ApiError(415, "unsupported_media_type", "Send the file as multipart/form-"
                           "data, in the field 'file'.")
        return
    if not request.headers.get("Content-Type") and not _has_body():
        return
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type",
                       "Request bodies must be JSON, sent with Content-Type: application/json.")


def _check_request() -> None:
    _check_host()
    _check_origin()
    _check_content_type()


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install_guards(app: Flask) -> None:
    app.before_request(_check_request)
    app.after_request(_add_security_headers)
