"""Who is asking: every request but a few public ones is made by one user.

With `SLUICE_AUTH=off` (the default) that is always the local user and nothing is
asked for. With it on, a request carries either an API key
(`Authorization: Bearer sk-sluice-…`, for programs) or the page's session cookie
(signed, `HttpOnly`, `SameSite=Lax`). A state-changing request made with the cookie
must also echo the session's CSRF token in `X-CSRF-Token`, which another site's
page cannot read. No credentials, or bad ones, is a `401` with
`WWW-Authenticate: Bearer`; the page sends a browser to `/login` instead.

Services never look at credentials: they get the user's id (`current_user().id`)
and answer `404` for any object that is not that user's.
"""
from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from ..errors import ApiError
from ..storage import request_session
from ..storage.models import LOCAL_USER_ID, User
from .keys import key_for

__all__ = ["Identity", "csrf_token", "current_user", "init_app", "page", "public",
           "sign_in", "sign_out", "socket_identity"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_DAYS = 14
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Identity:
    """The user a request acts for, and what its credential allows."""

    id: str
    name: str
    via: str  # "local" | "session" | "key"
    models: tuple[str, ...] | None = None  # a key's allowed models; None: all
    key_id: str | None = None  # the API key used, if any, and its own limits
    key_rpm: int | None = None
    key_max_streams: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}

    def check_model(self, model: str) -> None:
        """A key limited to some models may not use others: `403 model_not_allowed`."""
        if self.models is not None and model not in self.models:
            raise ApiError(403, "model_not_allowed", f"This API key may not use {model!r}; "
                                                     f"it may use: {', '.join(self.models)}.")


LOCAL = Identity(LOCAL_USER_ID, "local", "local")


def public(view: View) -> View:
    """Mark a view that answers without credentials (health, sign-in, static files)."""
    view.sluice_public = True  # type: ignore[attr-defined]
    return view


def page(view: View) -> View:
    """Mark a page: without a session, a browser is sent to sign in rather than told 401."""
    view.sluice_page = True  # type: ignore[attr-defined]
    return view


def current_user() -> Identity:
    return g.identity


def sign_in(user: User) -> str:
    """Start a cookie session for `user` (a fresh one: nothing from before survives) and
    return its CSRF token."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def sign_out() -> None:
    session.clear()


def csrf_token() -> str | None:
    """The current session's CSRF token, for the page to send back."""
    return session.get("csrf")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message,
                    headers={"WWW-Authenticate": 'Bearer realm="sluice"'})


def _from_header(header: str) -> Identity:
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("Send an API key as 'Authorization: Bearer sk-sluice-…'.")
    return _from_key(secret.strip())


def _from_key(secret: str) -> Identity:
    found = key_for(request_session(), secret)
    if found is None:
        raise _unauthorized("This API key is not valid: unknown, revoked or expired.")
    key, user = found
    return Identity(user.id, user.name, "key", tuple(key.models) if key.models else None,
                    key.id, key.rpm, key.max_streams)


def _from_session() -> Identity | None:
    user_id = session.get("uid")
    if not user_id:
        return None
    user = request_session().get(User, user_id)
    if user is None:  # deleted since signing in
        session.clear()
        return None
    if request.method not in _SAFE_METHODS:
        sent, expected = request.headers.get("X-CSRF-Token", ""), session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise ApiError(403, "csrf_failed", "This request needs the page's X-CSRF-Token "
                                               "header; reload the page and try again.")
    return Identity(user.id, user.name, "session")


def _from_request() -> Identity | None:
    """The request's API key (`Authorization`), else its cookie session, else None."""
    header = request.headers.get("Authorization")
    return _from_header(header) if header else _from_session()


def _authenticate() -> Response | None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or request.endpoint == "static" or getattr(view, "sluice_public", False):
        return None  # public, or no such route (a 404 follows)
    if current_app.config["SLUICE_AUTH"] == "off":
        g.identity = LOCAL
        return None
    identity = _from_request()
    if identity is None:
        if getattr(view, "sluice_page", False):
            return redirect(url_for("auth.login_page", next=request.full_path.rstrip("?")))
        raise _unauthorized("Sign in, or send an API key as 'Authorization: Bearer sk-sluice-…'.")
    g.identity = identity
    return None


def socket_identity(credentials: Any) -> Identity:
    """Who opens a Socket.IO connection, read in its handshake's request context, as for
    any request: an API key (the connect `auth` `{"api_key": …}`, or the `Authorization`
    header), else the session cookie. The handshake is a GET, so no CSRF token: the
    socket's origin is checked instead (services/sockets)."""
    if current_app.config["SLUICE_AUTH"] == "off":
        return LOCAL
    key = credentials.get("api_key") if isinstance(credentials, dict) else None
    if key is not None:
        if not isinstance(key, str) or not key.strip():
            raise _unauthorized("'api_key' must be an API key, sk-sluice-….")
        return _from_key(key.strip())
    identity = _from_request()
    if identity is None:
        raise _unauthorized("Sign in, or connect with auth {'api_key': 'sk-sluice-…'}.")
    return identity


def _secret_key(app: Flask) -> str:
    """SLUICE_SECRET_KEY, or one made once into the instance folder (shared by this host's
    workers; several hosts serving one site must set the same SLUICE_SECRET_KEY)."""
    if app.config.get("SLUICE_SECRET_KEY"):
        return app.config["SLUICE_SECRET_KEY"]
    path = os.path.join(app.instance_path, "secret_key")
    if not os.path.exists(path):
        # Written aside, then linked into place: a worker starting at the same moment
        # either finds no file or a whole one, and the first link wins.
        draft = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as written:
            written.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    with open(path, encoding="ascii") as stored:
        return stored.read().strip()


def init_app(app: Flask) -> None:
    app.secret_key = _secret_key(app)
    app.config.update(SESSION_COOKIE_NAME="sluice_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=app.config["SLUICE_COOKIE_SECURE"] == "on",
                      PERMANENT_SESSION_LIFETIME=timedelta(days=SESSION_DAYS))
    app.before_request(_authenticate)
