"""Shared fixtures: the seed protocol compiled once, and eligible subjects per cohort to vary."""

from __future__ import annotations

import copy
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

import rules
from rules.compiler import CompiledProtocol
from rules.decision import Decision
from rules.protocol import ProtocolDef


@pytest.fixture(scope="session")
def seed() -> ProtocolDef:
    return rules.seed_protocol()


@pytest.fixture(scope="session")
def compiled(seed: ProtocolDef) -> CompiledProtocol:
    return rules.compile_protocol(seed)


@pytest.fixture(scope="session")
def eligible_subjects(seed: ProtocolDef) -> dict[str, dict[str, Any]]:
    """One subject per cohort that the seed's own test cases declare eligible."""
    found: dict[str, dict[str, Any]] = {}
    for case in seed.test_cases:
        cohort = case.subject["cohort"]
        if case.expect == "eligible" and cohort not in found:
            found[cohort] = dict(case.subject)
    assert set(found) == {c.code for c in seed.cohorts}
    return found


@pytest.fixture
def subject(eligible_subjects: dict[str, dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """An eligible subject of a cohort, as a client sends it (ISO dates), with some values changed.

    None removes a value.
    """

    def make(cohort: str = "SLE", changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in eligible_subjects[cohort].items()}
        data = copy.deepcopy(data)
        for key, value in (changes or {}).items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return data

    return make


@pytest.fixture
def screen(compiled: CompiledProtocol, subject: Callable[..., dict[str, Any]]) -> Callable[..., Decision]:
    def run(cohort: str = "SLE", changes: Mapping[str, Any] | None = None) -> Decision:
        return rules.decide(compiled, subject(cohort, changes))

    return run


TEST_DATABASE_URL = os.environ.get("ELIGO_TEST_DATABASE_URL")


def _is_property_test(item: pytest.Item) -> bool:
    return hasattr(getattr(item, "obj", None), "hypothesis")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it needs, so `-m quick` (or `-m "not browser"`) picks a subset by cost."""
    for item in items:
        needs = set(getattr(item, "fixturenames", ()))
        if "/browser/" in item.nodeid or item.nodeid.startswith("tests/browser"):
            item.add_marker(pytest.mark.browser)
        elif (
            needs & {"gunicorn", "live_server", "tcp_proxy", "queue_worker"}
            or "test_load" in item.nodeid
            or "job_worker" in item.name
        ):
            item.add_marker(pytest.mark.server)
        elif item.nodeid.startswith(("tests/rules", "tests/engine")) and not _is_property_test(item):
            item.add_marker(pytest.mark.quick)  # the language, compiler and engine: no database, no server


# One account per role (and a screener of a second site); passwords are pw-<username>.
ACCOUNTS = {
    "admin": ("admin", None),
    "writer": ("writer", None),
    "reviewer": ("reviewer", None),
    "screener": ("screener", "SITE-1"),
    "screener2": ("screener", "SITE-2"),
}


@dataclass(frozen=True)
class TemplateDatabase:
    """The migrated database every test copies, and the API token of each of its ACCOUNTS."""

    url: str
    tokens: Mapping[str, str]


def _postgres(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _admin(statement: str) -> None:
    engine = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(statement)
    engine.dispose()


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> TemplateDatabase:
    """A database migrated to head with the seed published and ACCOUNTS made, built once and copied per test."""
    from service import create_app
    from service.infra.db import prepare

    if TEST_DATABASE_URL:
        _admin("DROP DATABASE IF EXISTS eligo_template WITH (FORCE)")
        _admin("CREATE DATABASE eligo_template")
        url = _postgres(TEST_DATABASE_URL, "eligo_template")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'eligo.db'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "DEMO_ACCOUNTS": False})
    prepare(app)
    with app.app_context():
        from service.auth import create_user
        from service.infra.models import db

        tokens = {}
        for username, (role, site) in ACCOUNTS.items():
            _, _, tokens[username] = create_user(username, role, password=f"pw-{username}", site=site)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return TemplateDatabase(url, MappingProxyType(tokens))


@pytest.fixture(scope="session")
def template_database(template: TemplateDatabase) -> str:
    return template.url


@pytest.fixture(scope="session")
def tokens(template: TemplateDatabase) -> Mapping[str, str]:
    """Each account's API token (read-only): `Authorization: Bearer {tokens["screener"]}`."""
    return template.tokens


@pytest.fixture(scope="session")
def bearer(tokens: Mapping[str, str]) -> Callable[[str], dict[str, str]]:
    """The headers of an API call as one of ACCOUNTS: `bearer("screener")`."""

    def headers(username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[username]}"}

    return headers


@pytest.fixture
def database_url(template_database, tmp_path, request) -> str:
    if TEST_DATABASE_URL:
        name = f"eligo_case_{os.getpid()}"
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _admin(f"CREATE DATABASE {name} TEMPLATE eligo_template")
        return _postgres(TEST_DATABASE_URL, name)
    path = tmp_path / "eligo.db"
    shutil.copy(template_database.removeprefix("sqlite:///"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def empty_database_url(tmp_path) -> str:
    if TEST_DATABASE_URL:
        name = f"eligo_empty_{os.getpid()}"
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _admin(f"CREATE DATABASE {name}")
        return _postgres(TEST_DATABASE_URL, name)
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def queue_url(tmp_path) -> str:
    """This test's job queue: a file of its own, whatever the database."""
    return f"sqlite:///{tmp_path / 'eligo-queue.db'}"


@pytest.fixture
def make_app(database_url, queue_url):
    """An app on this test's database, with extra configuration; every one made is closed after the test."""
    from service import create_app
    from service.infra.models import db
    from service.infra.queue import for_app

    made = []

    def make(**config: Any):
        # Impact runs inline: a background thread outliving its test would leak a connection into the next.
        settings = {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "QUEUE": queue_url,
            "DEMO_ACCOUNTS": False,
            "IMPACT_INLINE": True,
        }
        made.append(create_app({**settings, **config}))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        for_app(app).close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client_for(tokens):
    """A test client of any app acting through the API as one of ACCOUNTS (by bearer token), or anonymous (None)."""

    def make(app, username: str | None):
        client = app.test_client()
        if username:
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens[username]}"
        return client

    return make


@pytest.fixture
def client_as(app, client_for):
    """A test client of this test's app acting through the API as one of ACCOUNTS, or anonymous (None)."""
    return lambda username: client_for(app, username)


@pytest.fixture
def screening_request(subject):
    """A JSON API screening body for an eligible subject of a cohort, with changes to its envelope."""

    def make(cohort: str = "SLE", **changes: Any) -> dict[str, Any]:
        inputs = dict(subject(cohort))
        body = {
            "protocol": "NCT07193667",
            "subject_id": "S-001",
            "site": "SITE-1",
            "cohort": inputs.pop("cohort"),
            "screening_date": inputs.pop("screening_date"),
            "inputs": inputs,
        }
        return {**body, **changes}

    return make


@pytest.fixture
def client(client_as):
    """An admin's client: admins may do everything, so feature tests need no role juggling."""
    return client_as("admin")


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen

    def workers(self) -> list[int]:
        """The worker processes' ids (children of the gunicorn master)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]


@pytest.fixture
def gunicorn(database_url, queue_url, tmp_path):
    """Start gunicorn on 127.0.0.1 against this test's database, as in production; stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(workers: int = 1, preload: bool = False, **settings: str) -> LiveServer:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "ELIGO_DATABASE_URL": database_url,
            "ELIGO_QUEUE": queue_url,
            "ELIGO_DEMO_ACCOUNTS": "false",
            "ELIGO_SECRET_KEY": "live-tests",
            "ELIGO_IMPACT_INLINE": "true",
            **{f"ELIGO_{name}": value for name, value in settings.items()},
        }
        log_path = tmp_path / "server.log"
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        if preload:
            command.append("--preload")
        with log_path.open("w") as log:
            server = subprocess.Popen([*command, "service:create_app()"], env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(server)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                live = LiveServer(f"http://127.0.0.1:{port}", server)
                # Listening, and every worker forked: a test that kills one must find them all.
                if s.connect_ex(("127.0.0.1", port)) == 0 and len(live.workers()) >= workers:
                    return live
            if server.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(log_path.read_text())

    yield start
    for server in started:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def queue_worker(database_url, queue_url, tmp_path):
    """Start `eligo worker` processes on this test's database and queue (settings as ELIGO_ variables); each
    is stopped after the test. Their logs are in the test's folder."""
    started: list[subprocess.Popen] = []

    def start(**settings: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "ELIGO_DATABASE_URL": database_url,
            "ELIGO_QUEUE": queue_url,
            "ELIGO_DEMO_ACCOUNTS": "false",
            "ELIGO_SECRET_KEY": "live-tests",
            **{f"ELIGO_{name}": value for name, value in settings.items()},
        }
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        with log_path.open("w") as log:
            command = [sys.executable, "-m", "service.cli", "worker", "--threads", "1"]
            started.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        return started[-1]

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
        worker.wait(timeout=30)


@pytest.fixture
def drain():
    """Run every job waiting on an app's queue, here and now, as a worker would."""
    from service.infra.queue import for_app

    def run(app) -> int:
        huey, done = for_app(app).huey, 0
        while (task := huey.dequeue()) is not None:
            huey.execute(task)
            done += 1
        return done

    return run
