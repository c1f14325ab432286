"""The application factory: the one place where settings are read and parts attached."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import click
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from blueprints import (auth as auth_views, chat, documents as document_views, health,
                        jobs as job_views, memories, models, openai_compat, openapi,
                        operations as operation_views, pages, sockets as socket_events,
                        streams)
from blueprints.errors import register_error_handlers
from services import (auth, context, documents, jobs, memory, metrics, operations, providers,
                      ratelimit, sockets, storage, streaming, tools, web)
from services.auth.cli import init_cli
from services.config import default_settings, settings_from_env
from services.storage.migrate import upgrade_database


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then `config` (tests) on top."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(default_settings(app.instance_path))
    app.config.from_mapping(settings_from_env(os.environ))
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # keep fields in the order the contract lists them
    os.makedirs(app.instance_path, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    web.init_app(app)
    storage.init_app(app)
    auth.init_app(app)
    providers.init_app(app)
    context.init_app(app)
    metrics.init_app(app)
    tools.init_app(app)
    memory.init_app(app)
    streaming.init_app(app, observer=metrics.recorder(app))
    ratelimit.init_app(app)
    operations.init_app(app)
    jobs.init_app(app)
    documents.init_app(app)
    sockets.init_app(app)  # last: its middleware takes /socket.io/ before the rest

    for blueprint in (chat.bp, streams.bp, models.bp, openai_compat.bp, health.bp, pages.bp,
                      auth_views.bp, openapi.bp, operation_views.bp, job_views.bp, memories.bp,
                      document_views.bp):
        app.register_blueprint(blueprint)
    sockets.sockets(app).socketio.on_namespace(socket_events.SocketEvents("/"))
    register_error_handlers(app)
    init_cli(app)

    @app.cli.command("db-upgrade")
    def db_upgrade() -> None:
        """Apply the database migrations to DATABASE_URL."""
        try:
            upgrade_database(app.config["DATABASE_URL"])
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(f"cannot migrate the database at DATABASE_URL: {reason}")
        click.echo("database is up to date")

    return app
