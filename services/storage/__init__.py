"""The database: engine and session factory as a Flask extension, plus migrations.

Sessions have one owner each. A request gets one from `request_session()`, closed
at teardown; a stream's producer opens its own short `with db.transaction()`
blocks. No session is ever shared between threads or greenlets.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from ..config import ConfigError
from .memories import Memory
from .documents import Document, DocumentChunk, ThreadDocument
from .models import Base, Message, Thread
from .summaries import ThreadSummary
from .work import WebhookAttempt, Job, OperationRun, WebhookSecret

__all__ = ["Base", "Database", "Document", "DocumentChunk", "WebhookAttempt", "Job", "Memory",
           "Message", "OperationRun", "Thread", "ThreadDocument", "ThreadSummary",
           "WebhookSecret", "init_app", "request_session"]

EXTENSION = "sluice.db"


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and enforced foreign keys.
    A URL SQLAlchemy cannot use is a `ConfigError` naming DATABASE_URL."""
    try:
        if not url.startswith("sqlite"):
            return create_engine(url, pool_pre_ping=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"DATABASE_URL is not a database URL Sluice can use: {exc}") from None

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A short-lived session that commits on success and always closes."""
        with self.sessions.begin() as session:
            yield session

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))


def init_app(app: Flask) -> None:
    """Attach the database to `app` and close each request's session at teardown."""
    app.extensions[EXTENSION] = Database(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_request_session)


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions[EXTENSION]


def request_session() -> Session:
    """The session owned by the current request."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    return g.db_session


def _close_request_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
