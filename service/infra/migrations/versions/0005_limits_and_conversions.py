"""Variables get a lower limit of normal (`lln`) and a clinical unit conversion (`conversion`).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: batch mode would rebuild the table on SQLite and drop its triggers.
    op.add_column("variables", sa.Column("lln", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("variables", sa.Column("conversion", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("variables") as batch:
        batch.drop_column("conversion")
        batch.drop_column("lln")
