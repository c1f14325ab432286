"""A document chunk keeps its embedding, for vector search beside full-text search.

The vector is stored as packed little-endian float32 (`LargeBinary`) on every
database and ranked in Python, so PostgreSQL needs no pgvector extension;
`embedding_model` says which model made it, so a changed SLUICE_EMBEDDING_MODEL
never compares vectors of two models.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: a batch that copied the table on SQLite would drop
# the full-text search triggers migration 0008 put on it.
def upgrade() -> None:
    op.add_column("document_chunks", sa.Column("embedding", sa.LargeBinary()))
    op.add_column("document_chunks", sa.Column("embedding_model", sa.String(200)))


def downgrade() -> None:
    op.drop_column("document_chunks", "embedding_model")
    op.drop_column("document_chunks", "embedding")
