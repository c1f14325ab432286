"""Users and API keys, and an owner for every thread (its messages and streams follow).

Threads that exist already belong to the local user, who is what every request is
while SLUICE_AUTH is off.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LOCAL_USER_ID = "usr_local"


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.bulk_insert(users, [{"id": LOCAL_USER_ID, "name": "local", "password_hash": None,
                            "created_at": datetime.now(timezone.utc).replace(tzinfo=None)}])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(24), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("models", sa.JSON()),
        sa.Column("rpm", sa.Integer()),
        sa.Column("max_streams", sa.Integer()),
        sa.Column("expires_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("user_id", sa.String(40), nullable=False,
                                   server_default=LOCAL_USER_ID))
        batch.create_foreign_key("fk_threads_user_id", "users", ["user_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_index("ix_threads_user_id", ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.drop_index("ix_threads_user_id")
        batch.drop_constraint("fk_threads_user_id", type_="foreignkey")
        batch.drop_column("user_id")
    op.drop_table("api_keys")
    op.drop_table("users")
