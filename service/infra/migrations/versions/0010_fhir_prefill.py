"""FHIR prefill: the codes a variable carries, and where a screening's prefilled inputs came from.

`variables.coding` ([{system, code}]) lets a FHIR bundle's resources be matched to the dictionary;
`screenings.sources` ({variable: {resource, date, code, …}}) keeps, beside the inputs and outside the
decision, which record each prefilled value was taken from. Both are written with their row (a
published version's variables and a stored screening never change), so the existing triggers stand.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: batch mode would rebuild the tables on SQLite and drop their triggers.
    op.add_column("variables", sa.Column("coding", sa.JSON, nullable=False, server_default="[]"))
    op.add_column("screenings", sa.Column("sources", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("screenings") as batch:
        batch.drop_column("sources")
    with op.batch_alter_table("variables") as batch:
        batch.drop_column("coding")
