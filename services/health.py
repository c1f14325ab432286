"""What readiness means: every backing service this server uses answers."""
from __future__ import annotations

import redis
from sqlalchemy.exc import SQLAlchemyError

from .storage import database
from .streaming import streaming


def readiness() -> dict[str, str]:
    """Each dependency's state: "ok" or "unreachable" (Redis only when configured)."""
    checks = {}
    try:
        database().ping()
        checks["database"] = "ok"
    except SQLAlchemyError:
        checks["database"] = "unreachable"
    client = streaming().redis
    if client is not None:
        try:
            client.ping()
            checks["redis"] = "ok"
        except (redis.RedisError, OSError):
            checks["redis"] = "unreachable"
    return checks
