"""Value sets (named sets of codes rules match list entries against), and the code system of a list variable.

A value set belongs to a version like a criterion: frozen with it once published, by the same triggers.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FROZEN = "published protocol versions are immutable"


def upgrade() -> None:
    # A plain ADD COLUMN: batch mode would rebuild the table on SQLite and drop its triggers.
    op.add_column("variables", sa.Column("system", sa.String(40)))
    op.create_table(
        "value_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("protocol_versions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("codes", sa.JSON, nullable=False),
        sa.Column("half_life", sa.String(40)),
        sa.Column("help", sa.Text, nullable=False),
        sa.UniqueConstraint("version_id", "name"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """CREATE TRIGGER value_sets_frozen BEFORE INSERT OR UPDATE OR DELETE ON value_sets
            FOR EACH ROW EXECUTE FUNCTION eligo_parts_frozen()"""
        )
        return
    for when, row in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD")):
        op.execute(
            f"""CREATE TRIGGER value_sets_frozen_{when.lower()} BEFORE {when} ON value_sets
            WHEN (SELECT status FROM protocol_versions WHERE id = {row}.version_id) != 'draft'
            BEGIN SELECT RAISE(ABORT, '{FROZEN}'); END"""
        )
    op.execute(
        f"""CREATE TRIGGER value_sets_frozen_move BEFORE UPDATE ON value_sets
        WHEN (SELECT status FROM protocol_versions WHERE id = NEW.version_id) != 'draft'
        BEGIN SELECT RAISE(ABORT, '{FROZEN}'); END"""
    )


def downgrade() -> None:
    op.drop_table("value_sets")  # its triggers go with it
    with op.batch_alter_table("variables") as batch:
        batch.drop_column("system")
