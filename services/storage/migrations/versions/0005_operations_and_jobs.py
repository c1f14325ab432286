"""Operation runs, background jobs, their webhook delivery attempts, signing secrets.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _user_id() -> sa.Column:
    return sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "operation_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        _user_id(),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
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
        sa.Column("lease_expires_at", sa.DateTime()),
        sa.Column("result", sa.JSON()),
        sa.Column("repaired", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_operation_runs_status_lease", "operation_runs",
                    ["status", "lease_expires_at"])
    op.create_index("ix_operation_runs_user_created", "operation_runs", ["user_id", "created_at"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        _user_id(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.String(40), sa.ForeignKey("threads.id", ondelete="CASCADE")),
        sa.Column("request_message_id", sa.String(40)),
        sa.Column("message_id", sa.String(40)),
        sa.Column("operation_run_id", sa.String(40),
                  sa.ForeignKey("operation_runs.id", ondelete="CASCADE")),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("stream_id", sa.String(40), nullable=False, unique=True),
        sa.Column("result", sa.JSON()),
        sa.Column("error", sa.JSON()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime()),
        sa.Column("lease_expires_at", sa.DateTime()),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("webhook_id", sa.String(40), nullable=False),
        sa.Column("webhook_status", sa.String(16), nullable=False),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("next_delivery_at", sa.DateTime()),
        sa.Column("delivery_lease_expires_at", sa.DateTime()),
        sa.Column("delivered_at", sa.DateTime()),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.UniqueConstraint("user_id", "idempotency_key"),
    )
    op.create_index("ix_jobs_status_due", "jobs", ["status", "next_attempt_at"])
    op.create_index("ix_jobs_delivery_due", "jobs", ["webhook_status", "next_delivery_at"])
    op.create_index("ix_jobs_user_created", "jobs", ["user_id", "created_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("response_excerpt", sa.Text()),
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("previous_secret", sa.String(80)),
        sa.Column("rotated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_secrets")
    op.drop_table("webhook_attempts")
    op.drop_table("jobs")
    op.drop_table("operation_runs")
