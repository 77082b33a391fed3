"""The database: binding it to the app, and `prepare`: migrations to head, the seed protocol, demo accounts.

Preparing is an explicit step (`eligo init-db`, which `eligo serve` runs first), never a side effect of
creating the app: several web workers, a queue worker and a one-off command must not race to migrate, and a
deployment upgrades its schema once, on purpose.
"""

from __future__ import annotations

import os
import weakref
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import CursorResult, Executable, event
from sqlalchemy.exc import OperationalError

from rules import jsonfast
from service.infra.models import Protocol, User, db


class RawJSON(str):
    """JSON text already encoded (a batch's explanation, encoded by the engine process): stored as is."""


def _json_serializer(value: object) -> str:
    return str(value) if isinstance(value, RawJSON) else jsonfast.dumps(value)


def changed(statement: Executable) -> int:
    """Run an UPDATE in the session and say how many rows it changed (a conditional update's answer).

    SQLAlchemy types `Session.execute` as returning a Result, which has no `rowcount`; a DML statement's
    result is a CursorResult, which does."""
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("service.infra").joinpath("migrations")))
    return config


def upgrade() -> None:
    """Bring the bound database to the newest schema; an empty database gets every table."""
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def at_head() -> bool:
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current == ScriptDirectory.from_config(alembic_config()).get_current_head()


def seed() -> None:
    """Import the shipped seed protocol as version 1, published, unless it is already there."""
    import rules
    from service import versions

    if db.session.execute(db.select(Protocol).filter_by(code=rules.SEED_PROTOCOL)).scalar_one_or_none():
        return
    version = versions.import_definition(rules.seed_protocol(), created_by="system")
    versions.publish(version, versions.SYSTEM_SIGNATURE)


DEMO_ACCOUNTS = (
    ("writer", "writer", None),
    ("reviewer", "reviewer", None),
    ("screener", "screener", "SITE-1"),
    ("admin", "admin", None),
)


def demo_accounts() -> list[tuple[str, str, str, str]]:
    """One account per role in an empty user table; their passwords and tokens are shown once only."""
    from service.auth import create_user

    if db.session.execute(db.select(User).limit(1)).first() is not None:
        return []
    created = []
    for username, role, site in DEMO_ACCOUNTS:
        user, password, token = create_user(username, role, site=site)
        created.append((user.username, role, password, token))
    return created


def _print_accounts(accounts: list[tuple[str, str, str, str]]) -> None:
    print("Demo accounts (shown once; set ELIGO_DEMO_ACCOUNTS=false to start without them):", flush=True)
    for username, role, password, token in accounts:
        print(f"  {username:<10} role {role:<9} password {password}  API token {token}", flush=True)


def prepare(app: Flask) -> None:
    """Migrate to head, import the seed protocol and (on an empty user table) create the demo accounts."""
    with app.app_context():
        upgrade()
        seed()
        accounts = demo_accounts() if app.config["DEMO_ACCOUNTS"] else []
        db.session.commit()
        if accounts:
            _print_accounts(accounts)
        db.session.remove()
        db.engine.dispose()


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """Foreign keys on; write-ahead logging, so readers never wait for the writer and a commit is one
    fsync of the log (synchronous stays FULL: a screening acknowledged is on disk)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file readable by its owner only: it holds every subject's data."""
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _forget_pool(engine_ref: weakref.ref) -> None:
    engine = engine_ref()
    if engine is not None:
        engine.dispose(close=False)


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path) / 'eligo.db'}"
    if url.startswith("sqlite:///") and ":memory:" not in url:
        _private_sqlite_file(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    # JSON columns hold the explanation (tens of KB a screening): orjson encodes them several times faster.
    # A pooled server connection can die with its server (pre-ping finds out before a request uses it);
    # a SQLite file cannot, and the ping cost every request a statement.
    app.config.setdefault(
        "SQLALCHEMY_ENGINE_OPTIONS",
        {
            "pool_pre_ping": not url.startswith("sqlite"),
            "json_serializer": _json_serializer,
            "json_deserializer": jsonfast.loads,
        },
    )
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
            db.engine.dispose()
        try:
            if not at_head():
                app.logger.warning("the database %s is not at the newest schema: run `eligo init-db`", url)
        except OperationalError as error:  # not reachable yet: requests will say so; starting is not refused
            app.logger.warning("the database %s cannot be reached: %s", url, error.orig)
        # gunicorn --preload forks workers from this process: none may inherit its pooled connections
        # (two processes on one PostgreSQL connection answer each other's queries). Close them here,
        # and have a forked child drop whatever the parent holds without closing it under the parent.
        db.session.remove()
        db.engine.dispose()
        os.register_at_fork(after_in_child=partial(_forget_pool, weakref.ref(db.engine)))
