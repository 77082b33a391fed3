"""Injected faults: a crashing or hanging engine, a database that goes away, a replay killed half-way."""

from __future__ import annotations

import logging

import pytest

from service.models import Screening, db
from tests.conftest import TOKENS
from tests.service.faulty_engine import CRASH_AGE, HANG_AGE


@pytest.fixture
def faulty_client(make_app):
    app = make_app(ENGINE_CHILD_MAIN="tests.service.faulty_engine:serve", ENGINE_TIMEOUT=1.0)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKENS['admin']}"
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
