"""The low findings of the outside test (issue 13): each edge answered as the API promises."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest

from service import create_app, versions
from service.infra.models import Screening, db


def test_two_amendments_started_at_once_give_the_loser_a_409(client_as, monkeypatch):
    writer = client_as("writer")
    assert writer.post("/api/v1/protocols/NCT07193667/versions").status_code == 201
    monkeypatch.setattr(versions, "_next_number", lambda protocol: 2)  # it read the number before the first commit
    clash = writer.post("/api/v1/protocols/NCT07193667/versions")
    assert clash.status_code == 409
    assert clash.get_json()["error"]["errors"][0]["field"] == "from"


def test_an_idempotent_retry_is_compared_as_the_service_reads_it(client_as, screening_request):
    screener = client_as("screener")
    body = {**screening_request(), "cohort": "sle"}
    first = screener.post("/api/v1/screenings", json=body, headers={"Idempotency-Key": "norm-1"})
    again = screener.post("/api/v1/screenings", json=body, headers={"Idempotency-Key": "norm-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.get_json()["cohort"] == "SLE"
    assert again.headers["Idempotent-Replayed"] == "true"


def test_previous_screenings_are_linked_within_the_same_site_only(app, client_as, screening_request):
    client_as("screener").post("/api/v1/screenings", json=screening_request())
    other = client_as("screener2").post("/api/v1/screenings", json=screening_request(site="SITE-2"))
    assert other.get_json()["previous_id"] is None
    again = client_as("screener2").post("/api/v1/screenings", json=screening_request(site="SITE-2"))
    assert again.get_json()["previous_id"] == other.get_json()["id"]


@pytest.mark.parametrize("page", ["99999999999999999999", "-1", "x"])
def test_huge_admin_page_numbers_are_a_400_naming_page(client_as, page, app):
    from tests.service.conftest import page_token

    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    token = page_token(browser.get("/login").get_data(as_text=True))
    browser.post("/login", data={"username": "admin", "password": "pw-admin", "csrf_token": token})
    response = browser.get(f"/admin/audit/?page={page}")
    assert response.status_code == 400
    assert "`page`" in response.get_data(as_text=True)


@pytest.mark.parametrize("date", ["0001-01-01", "1899-12-31"])
def test_ancient_screening_dates_are_a_422_naming_the_field(client_as, screening_request, date):
    response = client_as("screener").post("/api/v1/screenings", json=screening_request(screening_date=date))
    assert response.status_code == 422
    assert response.get_json()["error"]["errors"][0]["field"] == "screening_date"


def test_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/v1/screenings")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_timestamps_carry_their_time_zone(client_as, screening_request):
    created = client_as("screener").post("/api/v1/screenings", json=screening_request()).get_json()
    assert dt.datetime.fromisoformat(created["created_at"]).utcoffset() == dt.timedelta(0)
    version = client_as("reviewer").get("/api/v1/protocols/NCT07193667/versions/1").get_json()
    assert dt.datetime.fromisoformat(version["published_at"]).utcoffset() == dt.timedelta(0)


def test_subject_data_is_never_cached(client_as, screening_request):
    screener = client_as("screener")
    created = screener.post("/api/v1/screenings", json=screening_request()).get_json()
    for url in (f"/api/v1/screenings/{created['id']}", "/api/v1/screenings", "/api/v1/screenings.csv"):
        assert screener.get(url).headers["Cache-Control"] == "no-store"


def test_the_sqlite_file_is_created_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "fresh" / "eligo.db"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "DEMO_ACCOUNTS": False})
    with app.app_context():
        db.engine.dispose()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_screeners_cannot_decide_under_drafts(client_as, subject):
    assert client_as("writer").post("/api/v1/protocols/NCT07193667/versions").status_code == 201
    body = {"protocol": "NCT07193667", "version": 2, "subject": subject()}
    refused = client_as("screener").post("/api/v1/decide", json=body)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["errors"][0]["field"] == "version"
    assert client_as("reviewer").post("/api/v1/decide", json=body).status_code == 200
    assert client_as("screener").post("/api/v1/decide", json={**body, "version": 1}).status_code == 200


def test_no_pooled_connection_survives_start_up_to_be_shared_by_forked_workers(app):
    """gunicorn --preload forks workers after create_app: the master must hold no open connection."""
    with app.app_context():
        assert db.engine.pool.checkedin() == 0
        assert db.session.query(Screening).count() == 0  # and the workers connect afresh
