"""Signing in and out, who am I, and API keys: `/login`, `/logout`, `/api/v1/me`,
`/api/v1/keys…`."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template

from services import auth
from services.auth.accounts import authenticate
from services.auth.keys import create_key, list_keys, parse_key_request, revoke_key
from services.errors import ApiError
from services.ratelimit import rate_limits
from services.storage import request_session

from .errors import json_body

bp = Blueprint("auth", __name__)


@bp.get("/login")
@auth.public
def login_page() -> str:
    return render_template("login.html")


@bp.post("/login")
@auth.public
def login() -> Response:
    if current_app.config["SLUICE_AUTH"] == "off":
        raise ApiError(404, "auth_off", "Signing in is off on this server (SLUICE_AUTH=off).")
    body = json_body()
    name = body.get("name")
    if isinstance(name, str):
        rate_limits().sign_in_attempt(name)
    user = authenticate(request_session(), name, body.get("password"))
    if user is None:
        raise ApiError(401, "invalid_credentials", "Wrong user name or password.")
    token = auth.sign_in(user)
    return jsonify({"user": user.to_dict(), "csrf_token": token})


@bp.post("/logout")
def logout() -> tuple[str, int]:
    auth.sign_out()
    return "", 204


@bp.get("/api/v1/me")
def me() -> Response:
    return jsonify({"user": auth.current_user().to_dict(),
                    "auth": current_app.config["SLUICE_AUTH"],
                    "csrf_token": auth.csrf_token()})


@bp.get("/api/v1/keys")
def keys() -> Response:
    found = list_keys(request_session(), auth.current_user().id)
    return jsonify({"keys": [key.to_dict() for key in found]})


@bp.post("/api/v1/keys")
def new_key() -> tuple[Response, int]:
    options = parse_key_request(json_body())
    key, secret = create_key(request_session(), auth.current_user().id, **options)
    return jsonify({"key": key.to_dict(), "secret": secret}), 201


@bp.delete("/api/v1/keys/<id:key_id>")
def delete_key(key_id: str) -> tuple[str, int]:
    revoke_key(request_session(), key_id, auth.current_user().id)
    return "", 204

