"""Amendments: a rationale per criterion, and impact runs with the screenings they change.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: batch mode would rebuild the table on SQLite and drop its triggers.
    op.add_column("criteria", sa.Column("rationale", sa.Text, nullable=False, server_default=""))
    op.create_table(
        "impact_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("protocol_id", sa.Integer, sa.ForeignKey("protocols.id"), nullable=False),
        sa.Column("from_version_id", sa.Integer, sa.ForeignKey("protocol_versions.id"), nullable=False),
        sa.Column("to_version_id", sa.Integer, sa.ForeignKey("protocol_versions.id"), nullable=False),
        sa.Column("to_content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False),
        sa.Column("changed", sa.Integer, nullable=False),
        sa.Column("transitions", sa.JSON, nullable=False),
        sa.Column("criteria", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
    )
    op.create_table(
        "impact_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("impact_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("screening_id", sa.Integer, sa.ForeignKey("screenings.id"), nullable=False),
        sa.Column("before", sa.String(20), nullable=False),
        sa.Column("after", sa.String(20), nullable=False),
        sa.Column("causes", sa.JSON, nullable=False),
    )
    op.create_index("ix_impact_changes_run_id", "impact_changes", ["run_id"])


def downgrade() -> None:
    op.drop_table("impact_changes")
    op.drop_table("impact_runs")
    with op.batch_alter_table("criteria") as batch:
        batch.drop_column("rationale")
