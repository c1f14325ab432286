"""API keys: `Authorization: Bearer sk-sluice-…` for programs.

A key's secret is shown once, when it is made. It is 240 random bits, so a plain
SHA-256 of it is safe to store and to look up by (a slow password hash buys nothing
against a secret nobody can guess); the first characters are kept to show in lists.
Every request looks its key up again, so a revocation or an expiry takes effect at
the next request, on every worker.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..storage.models import ApiKey, User, isoformat, utcnow

SECRET_PREFIX = "sk-sluice-"
SHOWN = len(SECRET_PREFIX) + 4  # characters of the secret kept for display
MAX_DAYS = 3650


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, user_id: str, name: str | None = None,
               expires_in_days: float | None = None, models: list[str] | None = None,
               rpm: int | None = None, max_streams: int | None = None) -> tuple[ApiKey, str]:
    """A new key for the user `user_id` and its secret, never stored or shown again."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(30)
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    key = ApiKey(user_id=user_id, name=name or "key", prefix=secret[:SHOWN],
                 secret_hash=_digest(secret), models=models, expires_at=expires, rpm=rpm,
                 max_streams=max_streams)
    session.add(key)
    session.commit()
    return key, secret


def parse_key_request(body: dict[str, Any]) -> dict[str, Any]:
    """`name`, `expires_in_days` and `models` of a key request, checked."""
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name.strip()) <= 100):
        raise ApiError(400, "invalid_field", "'name' must be a string of 1 to 100 characters.")
    days = body.get("expires_in_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))
                             or not 0 < days <= MAX_DAYS):
        raise ApiError(400, "invalid_field",
                       f"'expires_in_days' must be a number of days from 0 to {MAX_DAYS}.")
    models = body.get("models")
    if models is not None and (not isinstance(models, list) or not models or not all(
            isinstance(m, str) and 0 < len(m) <= 200 for m in models)):
        raise ApiError(400, "invalid_field",
                       "'models' must be a non-empty list of model ids such as demo/echo.")
    limits = {field: _limit(body, field) for field in ("rpm", "max_streams")}
    return {"name": name.strip() if name else None, "expires_in_days": days, "models": models,
            **limits}


def _limit(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 < value <= 1_000_000):
        raise ApiError(400, "invalid_field", f"{field!r} must be a whole number from 1 "
                                             "to 1000000 (or left out: the server's limit).")
    return value


def list_keys(session: Session, user_id: str | None) -> list[ApiKey]:
    """`user_id`'s keys, newest first; every user's with None (the operator's CLI)."""
    query = select(ApiKey).order_by(ApiKey.created_at.desc())
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return list(session.scalars(query))


def get_key(session: Session, key_id: str, user_id: str | None = None) -> ApiKey:
    """The key `key_id` (of `user_id`, when given); someone else's is not found."""
    key = session.get(ApiKey, key_id)
    if key is None or (user_id is not None and key.user_id != user_id):
        raise ApiError(404, "key_not_found", f"There is no key {key_id!r}.")
    return key


def revoke_key(session: Session, key_id: str, user_id: str | None = None) -> ApiKey:
    """Revoke a key; it stops working at the next request. Revoking twice is harmless."""
    key = get_key(session, key_id, user_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return key


def key_for(session: Session, secret: str) -> tuple[ApiKey, User] | None:
    """The live key whose secret this is (not revoked, not expired) and its user, read
    in one query: every request made with a key pays for it."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    found = session.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id)
                            .where(ApiKey.secret_hash == _digest(secret))).first()
    if found is None or found[0].revoked_at is not None or _expired(found[0].expires_at):
        return None
    return found[0], found[1]


def _expired(moment: datetime | None) -> bool:
    return moment is not None and moment <= utcnow()


def describe(key: ApiKey) -> str:
    """One line for the CLI's `keys list`."""
    state = ("revoked" if key.revoked_at else "expired" if _expired(key.expires_at)
             else "active")
    expires = isoformat(key.expires_at) or "never"
    models = ",".join(key.models) if key.models else "all models"
    limits = f"rpm {key.rpm or 'default'}, streams {key.max_streams or 'default'}"
    return f"{key.id}  {key.prefix}…  {key.name!r}  {state}  expires {expires}  {models}  {limits}"
