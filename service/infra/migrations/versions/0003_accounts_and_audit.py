"""Accounts get API tokens; an append-only audit trail of protocol data.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("token_hash", sa.String(64)))
    op.create_index("ix_users_token_hash", "users", ["token_hash"], unique=True)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.Integer),
        sa.Column("summary", sa.String(300), nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """CREATE FUNCTION eligo_audit_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'the audit trail is kept as recorded';
            END $$"""
        )
        op.execute(
            """CREATE TRIGGER audit_log_kept BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION eligo_audit_kept()"""
        )
    else:
        for when in ("UPDATE", "DELETE"):
            op.execute(
                f"""CREATE TRIGGER audit_log_kept_{when.lower()} BEFORE {when} ON audit_log
                BEGIN SELECT RAISE(ABORT, 'the audit trail is kept as recorded'); END"""
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS eligo_audit_kept() CASCADE")
    op.drop_table("audit_log")
    op.drop_index("ix_users_token_hash", "users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_hash")
