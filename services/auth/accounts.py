"""Users and their passwords.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's
recommendations); the hash carries its own parameters, so raising them later only
means rehashing at the next sign-in. Signing in with an unknown name still verifies
against a hash, so the time taken does not tell which names exist.
"""
from __future__ import annotations

import re
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..storage.models import User

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; this bounds the work one request causes

_hasher = PasswordHasher()
# Verified against when the name is unknown, so both cases cost the same.
_UNKNOWN_USER_HASH = _hasher.hash("no such user: this hash is only ever compared against")


def check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ApiError(400, "invalid_password",
                       f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.")


def create_user(session: Session, name: str, password: str) -> User:
    """A new user; names are unique, case-sensitive, and look like `ada` or `ada@example`."""
    if not NAME.fullmatch(name or ""):
        raise ApiError(400, "invalid_name", "A user name is 1 to 64 letters, digits and "
                                            "'._@-', starting with a letter or digit.")
    check_password(password)
    user = User(name=name, password_hash=_hasher.hash(password))
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "user_exists", f"There is already a user called {name!r}.") from None
    return user


def find_user(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).first()


def authenticate(session: Session, name: Any, password: Any) -> User | None:
    """The user whose name and password these are, or None (same cost either way).
    `name` and `password` come from a request body: anything but two strings is a 400."""
    if not isinstance(name, str) or not isinstance(password, str):
        raise ApiError(400, "invalid_field", "Send 'name' and 'password', both strings.")
    user = find_user(session, name) if NAME.fullmatch(name) else None
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        _hasher.verify(stored or _UNKNOWN_USER_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
        session.commit()
    return user
