"""Documents, their chunks and search index, and the documents a thread attaches.

The search index differs per dialect: on SQLite an external-content FTS5 table over
the chunks' text (BM25), kept in step by triggers, so that every insert and delete of
a chunk (a document's cascade too) updates it; on PostgreSQL a generated `tsvector`
column with a GIN index. Both are left out of the drift check (migrations/env.py).

Revision ID: 0008
Revises: 0007 (0006 and 0007 are written in parallel; chained when merged)
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SQLITE_INDEX = [
    "CREATE VIRTUAL TABLE document_chunks_fts USING fts5("
    "text, content='document_chunks', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER document_chunks_fts_insert AFTER INSERT ON document_chunks BEGIN "
    "INSERT INTO document_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER document_chunks_fts_delete AFTER DELETE ON document_chunks BEGIN "
    "INSERT INTO document_chunks_fts(document_chunks_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER document_chunks_fts_update AFTER UPDATE ON document_chunks BEGIN "
    "INSERT INTO document_chunks_fts(document_chunks_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO document_chunks_fts(rowid, text) VALUES (new.id, new.text); END",
]
POSTGRES_INDEX = [
    "ALTER TABLE document_chunks ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED",
    "CREATE INDEX ix_document_chunks_search ON document_chunks USING gin (search_vector)",
]


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("upload", sa.LargeBinary()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_documents_user_created", "documents", ["user_id", "created_at"])
    op.create_table(
        "document_chunks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(40),
                  sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.UniqueConstraint("document_id", "position"),
    )
    op.create_table(
        "thread_documents",
        sa.Column("thread_id", sa.String(40), sa.ForeignKey("threads.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("document_id", sa.String(40),
                  sa.ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_thread_documents_document_id", "thread_documents", ["document_id"])
    statements = SQLITE_INDEX if op.get_bind().dialect.name == "sqlite" else POSTGRES_INDEX
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS document_chunks_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS document_chunks_fts")
    op.drop_table("thread_documents")
    op.drop_table("document_chunks")
    op.drop_table("documents")
