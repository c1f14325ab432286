"""Alembic environment: runs migrations online against the URL Sluice passes in."""
from alembic import context

from services.storage import make_engine
from services.storage import Base

url = context.config.attributes["database_url"]
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
