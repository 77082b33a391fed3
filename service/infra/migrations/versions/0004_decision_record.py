"""The decision record: screenings hash-chained, idempotency keys, resumable replays, signed publication.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Published versions stay frozen: the triggers of 0001 compare these columns, now with the signature's reason.
VERSION_COLUMNS = [
    "id",
    "protocol_id",
    "number",
    "title",
    "source",
    "description",
    "content_hash",
    "based_on_id",
    "created_at",
    "published_at",
    "published_by",
    "publish_reason",
]


def upgrade() -> None:
    op.add_column("protocol_versions", sa.Column("publish_reason", sa.Text))
    op.add_column("impact_runs", sa.Column("cursor", sa.Integer, nullable=False, server_default="0"))
    op.add_column("screenings", sa.Column("idempotency_key", sa.String(200)))
    op.create_index("ix_screenings_idempotency", "screenings", ["created_by", "idempotency_key"], unique=True)
    op.create_table(
        "decision_records",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("screening_id", sa.Integer, sa.ForeignKey("screenings.id"), nullable=False, unique=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql()
    else:
        _sqlite()
    _chain_existing_screenings()


def _sqlite() -> None:
    unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in VERSION_COLUMNS)
    op.execute("DROP TRIGGER protocol_versions_frozen_update")
    op.execute(
        f"""CREATE TRIGGER protocol_versions_frozen_update BEFORE UPDATE ON protocol_versions
        WHEN OLD.status != 'draft'
         AND NOT (OLD.status IN ('published', 'retired') AND NEW.status IN ('published', 'retired')
                  AND NOT (OLD.status = 'retired' AND NEW.status = 'published') AND {unchanged})
        BEGIN SELECT RAISE(ABORT, 'published protocol versions are immutable'); END"""
    )
    for when in ("UPDATE", "DELETE"):
        op.execute(
            f"""CREATE TRIGGER decision_records_kept_{when.lower()} BEFORE {when} ON decision_records
            BEGIN SELECT RAISE(ABORT, 'the decision record is kept as recorded'); END"""
        )


def _postgresql() -> None:
    old = ", ".join(f"OLD.{c}" for c in VERSION_COLUMNS)
    new = ", ".join(f"NEW.{c}" for c in VERSION_COLUMNS)
    op.execute(
        f"""CREATE OR REPLACE FUNCTION eligo_versions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.status = 'draft' THEN
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
            RETURN NEW;
          END IF;
          IF TG_OP = 'UPDATE' AND NEW.status IN ('published', 'retired')
             AND NOT (OLD.status = 'retired' AND NEW.status = 'published')
             AND ROW({new}) IS NOT DISTINCT FROM ROW({old}) THEN
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'published protocol versions are immutable';
        END $$"""
    )
    op.execute(
        """CREATE FUNCTION eligo_record_kept() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the decision record is kept as recorded';
        END $$"""
    )
    op.execute(
        """CREATE TRIGGER decision_records_kept BEFORE UPDATE OR DELETE ON decision_records
        FOR EACH ROW EXECUTE FUNCTION eligo_record_kept()"""
    )


def _chain_existing_screenings() -> None:
    """Screenings stored before this revision join the chain in id order, so `eligo verify` covers them."""
    from service.record import chain_existing

    chain_existing(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS eligo_record_kept() CASCADE")
    op.drop_table("decision_records")
    op.drop_index("ix_screenings_idempotency", "screenings")
    with op.batch_alter_table("screenings") as batch:
        batch.drop_column("idempotency_key")
    with op.batch_alter_table("impact_runs") as batch:
        batch.drop_column("cursor")
    with op.batch_alter_table("protocol_versions") as batch:
        batch.drop_column("publish_reason")
