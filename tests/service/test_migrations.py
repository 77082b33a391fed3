"""Migrations: an empty database upgrades to head, and the schema matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service import create_app
from service.infra.db import at_head, prepare
from service.infra.models import Base, Protocol, User, db


def test_empty_database_upgrades_to_head_and_is_seeded(empty_database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_database_url})
    with app.app_context():
        assert not at_head()  # creating the app migrates nothing: `eligo init-db` does
    prepare(app)
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
        (protocol,) = db.session.execute(db.select(Protocol)).scalars()
        assert (protocol.code, protocol.current().number) == ("NCT07193667", 1)
        assert sorted(u.role for u in db.session.execute(db.select(User)).scalars()) == [
            "admin",
            "reviewer",
            "screener",
            "writer",
        ]
        db.session.remove()
        db.engine.dispose()


def test_starting_twice_changes_nothing_and_shows_demo_passwords_once(empty_database_url, capsys):
    for start in range(2):
        app = create_app({"TESTING": True, "DATABASE_URL": empty_database_url})
        prepare(app)
        with app.app_context():
            assert [v.number for v in db.session.execute(db.select(Protocol)).scalar_one().versions] == [1]
            assert db.session.query(User).count() == 4
            db.session.remove()
            db.engine.dispose()
        printed = capsys.readouterr().out
        assert ("API token" in printed) == (start == 0)


def test_demo_accounts_can_be_turned_off(empty_database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": empty_database_url, "DEMO_ACCOUNTS": False})
    prepare(app)
    with app.app_context():
        assert db.session.query(User).count() == 0
        db.session.remove()
        db.engine.dispose()


def test_upgrading_from_0006_deactivates_screeners_without_a_site(empty_database_url):
    """An active screener with no site read every site's log; after 0007 the account is off until it has one."""
    from alembic import command
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import IntegrityError

    from service.infra.db import alembic_config

    engine = create_engine(empty_database_url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(
            text(
                "INSERT INTO users (username, password_hash, role, site, active, created_at) VALUES"
                " ('lost', 'x', 'screener', NULL, true, '2026-01-01'),"
                " ('blank', 'x', 'screener', '', true, '2026-01-01'),"
                " ('placed', 'x', 'screener', 'SITE-1', true, '2026-01-01')"
            )
        )
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        active = dict(connection.execute(text("SELECT username, active FROM users")).all())
        assert {name: bool(on) for name, on in active.items()} == {"lost": False, "blank": False, "placed": True}
        connection.rollback()
        try:
            with connection.begin():
                connection.execute(text("UPDATE users SET active = true WHERE username = 'lost'"))
        except IntegrityError:
            pass
        else:
            raise AssertionError("an active screener without a site was accepted")
    engine.dispose()
