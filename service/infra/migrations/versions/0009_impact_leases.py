"""Impact runs get a lease (the worker running them, its heartbeat) and an attempt number, as batches have.

Runs are queue jobs now: a worker claims a run, renews its heartbeat with every chunk it commits, and
another worker takes the run over when the heartbeat stops. A run left `running` by an older release has
no heartbeat, so the first worker to look takes it over from its cursor.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: batch mode would rebuild the table on SQLite.
    op.add_column("impact_runs", sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
    op.add_column("impact_runs", sa.Column("heartbeat_at", sa.DateTime))
    op.add_column("impact_runs", sa.Column("worker", sa.String(300)))


def downgrade() -> None:
    with op.batch_alter_table("impact_runs") as batch:
        batch.drop_column("worker")
        batch.drop_column("heartbeat_at")
        batch.drop_column("attempt")
