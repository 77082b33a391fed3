"""Initial schema: protocols, versions and their parts, screenings, users; published versions frozen.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PARTS = ("cohorts", "variables", "criteria", "test_cases")
VERSION_COLUMNS = [
    "id",
    "protocol_id",
    "number",
    "status",
    "title",
    "source",
    "description",
    "content_hash",
    "based_on_id",
    "created_at",
    "published_at",
    "published_by",
]


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True)


def _part_columns() -> list[sa.Column]:
    return [
        _id(),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("protocol_versions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("username", sa.String(80), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("site", sa.String(80)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "protocols",
        _id(),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "protocol_versions",
        _id(),
        sa.Column("protocol_id", sa.Integer, sa.ForeignKey("protocols.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("based_on_id", sa.Integer, sa.ForeignKey("protocol_versions.id")),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("published_at", sa.DateTime),
        sa.Column("published_by", sa.String(80)),
        sa.UniqueConstraint("protocol_id", "number"),
    )
    op.create_table(
        "cohorts",
        *_part_columns(),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.UniqueConstraint("version_id", "code"),
    )
    op.create_table(
        "variables",
        *_part_columns(),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("unit", sa.String(40)),
        sa.Column("units", sa.JSON, nullable=False),
        sa.Column("minimum", sa.Float),
        sa.Column("maximum", sa.Float),
        sa.Column("codes", sa.JSON, nullable=False),
        sa.Column("uln", sa.Boolean, nullable=False),
        sa.Column("molar_mass", sa.String(40)),
        sa.Column("formula", sa.Text),
        sa.Column("section", sa.String(120), nullable=False),
        sa.Column("help", sa.Text, nullable=False),
        sa.UniqueConstraint("version_id", "name"),
    )
    op.create_table(
        "criteria",
        *_part_columns(),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cohorts", sa.JSON, nullable=False),
        sa.Column("section", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.UniqueConstraint("version_id", "code"),
    )
    op.create_table(
        "test_cases",
        *_part_columns(),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("subject", sa.JSON, nullable=False),
        sa.Column("expect", sa.String(20), nullable=False),
        sa.Column("outcomes", sa.JSON, nullable=False),
        sa.Column("missing", sa.JSON),
        sa.UniqueConstraint("version_id", "name"),
    )
    op.create_table(
        "screenings",
        _id(),
        sa.Column("protocol_id", sa.Integer, sa.ForeignKey("protocols.id"), nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("protocol_versions.id"), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(80), nullable=False),
        sa.Column("site", sa.String(80), nullable=False),
        sa.Column("cohort", sa.String(40), nullable=False),
        sa.Column("screening_date", sa.Date, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("previous_id", sa.Integer, sa.ForeignKey("screenings.id")),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(80)),
    )
    op.create_index("ix_screenings_log", "screenings", ["protocol_id", "created_at"])
    op.create_index("ix_screenings_subject", "screenings", ["protocol_id", "subject_id"])
    op.create_index("ix_screenings_site", "screenings", ["site"])
    op.create_index("ix_screenings_decision", "screenings", ["decision"])
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in VERSION_COLUMNS if c != "status")
    op.execute(
        f"""CREATE TRIGGER protocol_versions_frozen_update BEFORE UPDATE ON protocol_versions
        WHEN OLD.status != 'draft'
         AND NOT (OLD.status IN ('published', 'retired') AND NEW.status IN ('published', 'retired')
                  AND NOT (OLD.status = 'retired' AND NEW.status = 'published') AND {unchanged})
        BEGIN SELECT RAISE(ABORT, 'published protocol versions are immutable'); END"""
    )
    op.execute(
        """CREATE TRIGGER protocol_versions_frozen_delete BEFORE DELETE ON protocol_versions
        WHEN OLD.status != 'draft'
        BEGIN SELECT RAISE(ABORT, 'published protocol versions are immutable'); END"""
    )
    for table in PARTS:
        for when, row in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD")):
            op.execute(
                f"""CREATE TRIGGER {table}_frozen_{when.lower()} BEFORE {when} ON {table}
                WHEN (SELECT status FROM protocol_versions WHERE id = {row}.version_id) != 'draft'
                BEGIN SELECT RAISE(ABORT, 'published protocol versions are immutable'); END"""
            )
        op.execute(
            f"""CREATE TRIGGER {table}_frozen_move BEFORE UPDATE ON {table}
            WHEN (SELECT status FROM protocol_versions WHERE id = NEW.version_id) != 'draft'
            BEGIN SELECT RAISE(ABORT, 'published protocol versions are immutable'); END"""
        )
    for when in ("UPDATE", "DELETE"):
        op.execute(
            f"""CREATE TRIGGER screenings_kept_{when.lower()} BEFORE {when} ON screenings
            BEGIN SELECT RAISE(ABORT, 'screenings are kept as recorded'); END"""
        )


def _postgresql_triggers() -> None:
    old = ", ".join(f"OLD.{c}" for c in VERSION_COLUMNS if c != "status")
    new = ", ".join(f"NEW.{c}" for c in VERSION_COLUMNS if c != "status")
    op.execute(
        f"""CREATE FUNCTION eligo_versions_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
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
        """CREATE TRIGGER protocol_versions_frozen BEFORE UPDATE OR DELETE ON protocol_versions
        FOR EACH ROW EXECUTE FUNCTION eligo_versions_frozen()"""
    )
    op.execute(
        """CREATE FUNCTION eligo_parts_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          status text;
        BEGIN
          IF TG_OP IN ('UPDATE', 'DELETE') THEN
            SELECT v.status INTO status FROM protocol_versions v WHERE v.id = OLD.version_id;
            IF status IS DISTINCT FROM 'draft' AND status IS NOT NULL THEN
              RAISE EXCEPTION 'published protocol versions are immutable';
            END IF;
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') THEN
            SELECT v.status INTO status FROM protocol_versions v WHERE v.id = NEW.version_id;
            IF status IS DISTINCT FROM 'draft' THEN
              RAISE EXCEPTION 'published protocol versions are immutable';
            END IF;
            RETURN NEW;
          END IF;
          RETURN OLD;
        END $$"""
    )
    for table in PARTS:
        op.execute(
            f"""CREATE TRIGGER {table}_frozen BEFORE INSERT OR UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION eligo_parts_frozen()"""
        )
    op.execute(
        """CREATE FUNCTION eligo_screenings_kept() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'screenings are kept as recorded';
        END $$"""
    )
    op.execute(
        """CREATE TRIGGER screenings_kept BEFORE UPDATE OR DELETE ON screenings
        FOR EACH ROW EXECUTE FUNCTION eligo_screenings_kept()"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in ("eligo_versions_frozen", "eligo_parts_frozen", "eligo_screenings_kept"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}() CASCADE")
    for table in ("screenings", *PARTS, "protocol_versions", "protocols", "users"):
        op.drop_table(table)
