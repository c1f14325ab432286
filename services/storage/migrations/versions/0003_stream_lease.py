"""A streaming message's lease: its producer renews it; when it lapses, the producer is gone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime()))
        batch.create_index("ix_messages_status_lease", ["status", "lease_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_status_lease")
        batch.drop_column("lease_expires_at")
