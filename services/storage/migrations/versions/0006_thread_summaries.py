"""Summaries of long threads' earlier messages.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thread_summaries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("thread_id", sa.String(40), sa.ForeignKey("threads.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("upto_position", sa.Integer(), nullable=False),
        sa.Column("upto_message_id", sa.String(40), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_thread_summaries_thread_upto", "thread_summaries",
                    ["thread_id", "upto_position"])


def downgrade() -> None:
    op.drop_table("thread_summaries")
