"""Hardening: screeners need a site, sign-in lockout and session epochs, batches run in the background.

Revision ID: 0007
Revises: 0006

Existing active screeners without a site are deactivated (an admin gives them a site and turns them
back on): before this revision such a screener read every site's log.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCREENER_HAS_SITE = "role <> 'screener' OR NOT active OR (site IS NOT NULL AND site <> '')"


def upgrade() -> None:
    op.execute(
        "UPDATE users SET active = false WHERE role = 'screener' AND (site IS NULL OR site = '')"
        if op.get_bind().dialect.name == "postgresql"
        else "UPDATE users SET active = 0 WHERE role = 'screener' AND (site IS NULL OR site = '')"
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_at", sa.DateTime))
        batch.add_column(sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"))
        batch.create_check_constraint("ck_users_screener_site", SCREENER_HAS_SITE)
    op.create_table(
        "batch_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("rows", sa.JSON),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False),
        sa.Column("error", sa.JSON),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
        sa.Column("worker", sa.String(300)),
        sa.Column("finished_at", sa.DateTime),
        sa.UniqueConstraint("created_by", "idempotency_key"),
    )


def downgrade() -> None:
    op.drop_table("batch_runs")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("ck_users_screener_site", type_="check")
        batch.drop_column("session_epoch")
        batch.drop_column("locked_at")
        batch.drop_column("failed_logins")
