"""Threads and messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "threads",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("title", sa.String(200)),
        sa.Column("model", sa.String(200)),
        sa.Column("system", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_threads_updated_at", "threads", ["updated_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("thread_id", sa.String(40),
                  sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("tool_calls", sa.JSON()),
        sa.Column("error", sa.JSON()),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("ttft_ms", sa.Integer()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("tokens_per_sec", sa.Float()),
        sa.Column("stream_id", sa.String(40), unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("thread_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_index("ix_threads_updated_at", "threads")
    op.drop_table("threads")
