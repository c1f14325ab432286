"""Apply the schema migrations (Alembic) to a database."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for `database_url`, without an alembic.ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not an ini option, so '%' in passwords needs no escaping.
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str) -> None:
    """Bring the schema of `database_url` up to the newest migration."""
    command.upgrade(alembic_config(database_url), "head")
