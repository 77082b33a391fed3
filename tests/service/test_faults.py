"""Injected faults: a crashing or hanging engine, a database that goes away, a replay killed half-way."""

from __future__ import annotations

import logging
import shutil

import pytest
from sqlalchemy import make_url

from service.infra.models import Screening, db
from tests.service.faulty_engine import CRASH_AGE, HANG_AGE
from tests.service.tcp_proxy import Proxy


@pytest.fixture
def faulty_client(make_app, client_for):
    app = make_app(ENGINE_CHILD_MAIN="tests.service.faulty_engine:serve", ENGINE_TIMEOUT=1.0)
    client = client_for(app, "admin")
    return app, client


def _stored(app) -> int:
    with app.app_context():
        return db.session.query(Screening).count()


@pytest.mark.parametrize(("age", "what"), [(CRASH_AGE, "crashed"), (HANG_AGE, "did not answer")])
def test_an_engine_fault_answers_503_for_that_request_alone(faulty_client, screening_request, caplog, age, what):
    app, client = faulty_client
    assert client.post("/api/v1/screenings", json=screening_request()).status_code == 201
    faulty = screening_request(subject_id="S-FAULT")
    faulty["inputs"]["age"] = age

    with caplog.at_level(logging.ERROR):
        response = client.post("/api/v1/screenings", json=faulty)

    assert response.status_code == 503
    assert "engine" in response.get_json()["error"]["message"]
    assert any(what in record.getMessage() for record in caplog.records)
    assert _stored(app) == 1  # nothing half-written for the faulty subject
    again = client.post("/api/v1/screenings", json=screening_request(subject_id="S-002"))
    assert again.status_code == 201  # a new engine process took over
    assert _stored(app) == 2


@pytest.fixture
def outage(database_url, tmp_path):
    """A database URL for an app, and a switch that takes the database away and brings it back."""
    if database_url.startswith("sqlite:///"):
        home = tmp_path / "database"
        home.mkdir()
        shutil.move(database_url.removeprefix("sqlite:///"), home / "eligo.db")

        def switch(app, down: bool) -> None:
            # The file vanishes with its directory, as a lost volume would; open connections go with it.
            (home if down else tmp_path / "away").rename(tmp_path / "away" if down else home)
            with app.app_context():
                db.engine.dispose()

        yield f"sqlite:///{home / 'eligo.db'}", switch
        return
    url = make_url(database_url)
    proxy = Proxy(url.host, url.port)

    def cut(app, down: bool) -> None:
        proxy.cut() if down else proxy.restore()

    yield url.set(port=proxy.port).render_as_string(hide_password=False), cut
    proxy.close()


def test_a_lost_database_answers_503_and_the_service_recovers_when_it_returns(
    make_app, screening_request, outage, client_for
):
    url, switch = outage
    app = make_app(DATABASE_URL=url)
    client = client_for(app, "admin")
    assert client.post("/api/v1/screenings", json=screening_request()).status_code == 201

    switch(app, down=True)
    response = client.post("/api/v1/screenings", json=screening_request(subject_id="S-LOST"))
    assert response.status_code == 503
    assert response.get_json()["error"]["message"] == "the database is not available; try again shortly"
    page = client.get("/log", headers={"Accept": "text/html"})
    assert page.status_code == 503 and b"the database is not available" in page.data

    switch(app, down=False)
    assert client.post("/api/v1/screenings", json=screening_request(subject_id="S-BACK")).status_code == 201
    subjects = client.get("/api/v1/screenings?protocol=NCT07193667").get_json()
    assert sorted(s["subject_id"] for s in subjects["items"]) == ["S-001", "S-BACK"]
