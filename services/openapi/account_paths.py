"""Accounts, the page, and the service's own routes: `/api/v1/me`, `/api/v1/keys…`,
`/login`, `/logout`, `/`, `/healthz`, `/readyz` and this description
(blueprints/auth.py, pages.py, health.py, openapi.py)."""
from __future__ import annotations

from typing import Any

from .builders import (PUBLIC, READ_SECURITY, WRITE_SECURITY, closed, errors, json_body,
                       json_response, nullable, operation, path_id, ref, with_links)

HTML = {"text/html": {"schema": {"type": "string"}}}


def _me() -> dict[str, Any]:
    return {"get": operation(
        "getMe", "Who you are", "accounts",
        {"200": json_response("The user this request acts for.", closed({
            "user": ref("Identity"),
            "auth": {"enum": ["on", "off"], "description": "The server's `SLUICE_AUTH`."},
            "csrf_token": nullable({"type": "string", "description": (
                "The cookie session's token for `X-CSRF-Token`; null without a session.")}),
        }))},
        errors(), security=READ_SECURITY)}


def _keys() -> dict[str, Any]:
    return {"get": operation(
        "listKeys", "Your API keys", "accounts",
        {"200": json_response("Newest first, revoked and expired ones included; never their "
                              "secrets.", closed({"keys": {"type": "array",
                                                            "items": ref("Key")}}))},
        errors(), security=READ_SECURITY),
        "post": operation(
        "createKey", "Make an API key", "accounts",
        {"201": with_links(json_response(
            "The key, and its secret: shown this once, stored only as a hash.",
            closed({"key": ref("Key"), "secret": {"type": "string",
                                                  "pattern": "^sk-sluice-[A-Za-z0-9_-]+$"}})),
            "key_id", "/key/id", "revokeKey")},
        errors(reads_body=True, changes=True, own={400: ("invalid_field",)}),
        body=json_body(ref("KeyRequest"), required=False), security=WRITE_SECURITY)}


def _key() -> dict[str, Any]:
    return {"parameters": [path_id("key_id", "A key's id (`key_…`).")], "delete": operation(
        "revokeKey", "Revoke an API key", "accounts",
        {"204": {"description": "Revoked (or already was): it stops working at its next "
                                "request, on every worker."}},
        errors(changes=True, own={404: ("key_not_found", "not_found")}),
        security=WRITE_SECURITY)}


def _login() -> dict[str, Any]:
    return {"get": operation(
        "loginPage", "The sign-in page", "pages", {"200": {
            "description": "An HTML form that posts to `POST /login`.", "content": HTML}},
        errors(public=True), security=PUBLIC),
        "post": operation(
        "login", "Sign in: start a cookie session", "accounts",
        {"200": json_response("Signed in: the session cookie is set (`HttpOnly`, "
                              "`SameSite=Lax`); send `csrf_token` as `X-CSRF-Token` with "
                              "every change.", closed({"user": ref("User"),
                                                       "csrf_token": {"type": "string"}})),
         },
        errors(reads_body=True, changes=True, public=True, own={
            400: ("invalid_field",), 401: ("invalid_credentials",), 404: ("auth_off",),
            429: ("rate_limited",)}),
        body=json_body(ref("Login")), security=PUBLIC,
        description="A wrong name and a wrong password get the same `401 "
                    "invalid_credentials`; a name or password that is not a string is "
                    "`400 invalid_field`. With `SLUICE_AUTH=off` there is nobody to sign in "
                    "as: `404 auth_off`. Ten attempts a minute per name; then `429`.")}


def _logout() -> dict[str, Any]:
    return {"post": operation(
        "logout", "Sign out: end the cookie session", "accounts",
        {"204": {"description": "The session cookie is cleared."}},
        errors(changes=True), security=WRITE_SECURITY)}


def _chat_page() -> dict[str, Any]:
    return {"get": operation(
        "chatPage", "The chat page", "pages",
        {"200": {"description": "The page (HTML).", "content": HTML},
         "302": {"description": "With `SLUICE_AUTH=on` and no session: to `/login`.",
                 "headers": {"Location": {"schema": {"type": "string",
                                                     "pattern": "^(https?://[^/]+)?/login"}}}}},
        errors(), security=READ_SECURITY)}


def _health() -> dict[str, Any]:
    ok = json_response("The process is alive.", closed({"status": {"const": "ok"}}))
    return {"get": operation("healthz", "Liveness", "service", {"200": ok}, errors(public=True),
                             security=PUBLIC)}


def _ready() -> dict[str, Any]:
    state = {"enum": ["ok", "unreachable"]}
    checks = {"type": "object", "required": ["database"], "additionalProperties": False,
              "properties": {"database": state, "redis": {
                  **state, "description": "Only when `REDIS_URL` is set."}}}

    def answer(status: str, text: str) -> dict[str, Any]:
        return json_response(text, closed({"status": {"const": status}, "checks": checks}))
    return {"get": operation(
        "readyz", "Readiness", "service",
        {"200": answer("ok", "The database (and Redis, when configured) answer."),
         "503": answer("unavailable", "Something this server needs does not answer.")},
        errors(public=True), security=PUBLIC)}


def _description_route() -> dict[str, Any]:
    document = {"type": "object", "required": ["openapi", "info", "paths"],
                "properties": {"openapi": {"type": "string", "pattern": "^3\\.1\\."}}}
    return {"get": operation(
        "openapi", "This description", "service",
        {"200": json_response("OpenAPI 3.1, for any OpenAPI viewer or client generator.",
                              document)},
        errors(public=True), security=PUBLIC)}


def paths() -> dict[str, Any]:
    """The path items of accounts, pages, probes and this description, by path."""
    return {
        "/api/v1/me": _me(),
        "/api/v1/keys": _keys(),
        "/api/v1/keys/{key_id}": _key(),
        "/login": _login(),
        "/logout": _logout(),
        "/": _chat_page(),
        "/healthz": _health(),
        "/readyz": _ready(),
        "/api/v1/openapi.json": _description_route(),
    }
