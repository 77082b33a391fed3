"""Migrations: an empty database upgrades to head, and the schema matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service import create_app
from service.db import at_head
from service.models import Base, db


def test_empty_database_upgrades_to_head_and_is_seeded(empty_database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_database_url})
    with app.app_context():
        assert at_head()
        tables = set(inspect(db.engine).get_table_names())
        assert {
            "protocols",
            "protocol_versions",
            "variables",
            "criteria",
            "test_cases",
            "screenings",
            "users",
        } <= tables
        with db.engine.connect() as connection:
            drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert drift == []
        client = app.test_client()
        (protocol,) = client.get("/api/v1/protocols").get_json()
        assert (protocol["protocol"], protocol["current_version"]) == ("NCT07193667", 1)
        db.session.remove()
        db.engine.dispose()


def test_starting_twice_changes_nothing(empty_database_url):
    for _ in range(2):
        app = create_app({"TESTING": True, "DATABASE_URL": empty_database_url})
        with app.app_context():
            versions = app.test_client().get("/api/v1/protocols/NCT07193667").get_json()["versions"]
            assert [v["version"] for v in versions] == [1]
            db.session.remove()
            db.engine.dispose()
