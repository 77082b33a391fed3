"""Variables may be named conditions: a yes/no defined by a rule (`condition`), decided by the engine;
test cases may expect a subject to be refused as input, naming the fields (`refused`).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: batch mode would rebuild the table on SQLite and drop its triggers.
    op.add_column("variables", sa.Column("condition", sa.Text))
    op.add_column("test_cases", sa.Column("refused", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("test_cases") as batch:
        batch.drop_column("refused")
    with op.batch_alter_table("variables") as batch:
        batch.drop_column("condition")
