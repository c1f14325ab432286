"""Alembic environment: runs migrations online against the URL Sluice passes in."""
from __future__ import annotations

from alembic import context

from services.storage import make_engine
from services.storage import Base
from services.storage.documents import SEARCH_COLUMN, SEARCH_INDEX, SEARCH_TABLE_PREFIX

url = context.config.attributes["database_url"]


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    """Leave the documents' search index out of the drift check: it is built by hand per
    dialect in migration 0008 (FTS5 tables and triggers, a generated tsvector column)."""
    if type_ == "table" and name.startswith(SEARCH_TABLE_PREFIX):
        return False
    return not (reflected and name in (SEARCH_COLUMN, SEARCH_INDEX))


engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=Base.metadata, render_as_batch=True,
        include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
