"""Domain code raises domain errors and takes the actor and site as arguments; only the web layer maps them to HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service import batch, impact, screenings, versions
from service.amendments_rebase import RebaseRefused
from service.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    Unreadable,
    http_status,
)
from service.infra.models import Screening, db


@pytest.mark.parametrize(
    ("kind", "status"),
    [(Unreadable, 400), (InvalidInput, 422), (TooLarge, 413), (NotFound, 404), (Forbidden, 403), (Conflict, 409)],
)
def test_each_kind_of_domain_error_has_one_http_status(kind, status):
    assert http_status(kind("refused")) == status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (versions.UnknownVersion("no protocol 'X'", "protocol", "X"), 404),
        (versions.VersionRefused("version 1 is already published", "version", 1), 422),
        (versions.VersionConflict("version 2 is already based on the current version 1", "based_on", 1), 409),
        (RebaseRefused("would not compile", ["criteria[0]: unknown variable `x`"], 1), 422),
        (impact.ImpactError("impact run 1 is done; only a failed or interrupted run resumes"), 409),
        (versions.PublishRefused([versions.TestFailure("SLE eligible", {"decision": "eligible"}, {})]), 422),
    ],
)
def test_version_publish_rebase_and_impact_errors_are_domain_errors(error, status):
    """The one domain-error handler answers them: no view catches and maps them by hand."""
    assert isinstance(error, DomainError) and http_status(error) == status


def test_an_unknown_version_answers_the_standard_body(client):
    body = client.get("/api/v1/protocols/NCT07193667/versions/99").get_json()
    assert body["error"]["status"] == 404
    assert body["error"]["errors"] == [{"field": "version", "value": 99, "expected": "an existing one"}]


def test_a_version_in_the_wrong_status_names_the_status_expected(client):
    published = client.post(
        "/api/v1/protocols/NCT07193667/versions/1/publish", json={"password": "pw-admin", "reason": "r"}
    )
    assert published.status_code == 422
    assert published.get_json()["error"]["errors"] == [{"field": "version", "value": 1, "expected": "a draft"}]
    rebased = client.post("/api/v1/protocols/NCT07193667/versions/1/rebase").get_json()["error"]
    assert (rebased["status"], rebased["errors"][0]["expected"]) == (422, "a draft")


def test_resuming_a_finished_impact_run_is_a_conflict(client):
    draft = client.post("/api/v1/protocols/NCT07193667/versions", json={}).get_json()
    started = client.post("/api/v1/protocols/NCT07193667/impact", json={"from": 1, "to": draft["version"]})
    assert started.status_code == 201
    resumed = client.post(f"/api/v1/impact/{started.get_json()['id']}/resume")
    assert resumed.status_code == 409
    assert "only a failed or interrupted run resumes" in resumed.get_json()["error"]["message"]


def test_screening_for_another_site_is_forbidden_without_any_request(app, screening_request):
    with app.app_context():
        with pytest.raises(Forbidden) as refused:
            screenings.screen(screening_request(site="SITE-2"), "someone", site="SITE-1")
        assert refused.value.problems == [{"field": "site", "value": "SITE-2", "expected": "SITE-1"}]
        assert db.session.execute(select(func.count()).select_from(Screening)).scalar_one() == 0
        screening, stored = screenings.screen(screening_request(site="SITE-2"), "someone", site=None)
        assert stored and screening.created_by == "someone"


@pytest.mark.parametrize(
    ("changes", "kind"),
    [({"colour": "red"}, Unreadable), ({"protocol": "NCT0"}, NotFound), ({"subject_id": "John Smith"}, InvalidInput)],
)
def test_bad_screening_requests_are_domain_errors(app, screening_request, changes, kind):
    with app.app_context(), pytest.raises(kind):
        screenings.screen(screening_request(**changes), "someone", site=None)


def test_a_batch_row_for_another_site_is_named_by_its_row(app):
    csv = "subject_id,site,screening_date,cohort,age [years]\nS-1,SITE-2,2026-11-02,SLE,40\n"
    with app.app_context():
        rows = batch.read(csv, "NCT07193667", None)
        with pytest.raises(InvalidInput) as refused:
            batch.decide_rows(rows, site="SITE-1")
    assert refused.value.problems[0] == {"row": 2, "field": "site", "value": "SITE-2", "expected": "SITE-1"}
    assert isinstance(refused.value, DomainError) and not isinstance(refused.value, Forbidden)


def test_a_body_the_api_validated_is_screened_as_it_is(app, screening_request, monkeypatch):
    from service import schemas

    checked = schemas.ScreeningRequest.model_validate(screening_request())
    monkeypatch.setattr(schemas.ScreeningRequest, "model_validate", None)  # not validated a second time
    with app.app_context():
        screening, stored = screenings.screen(checked, "someone", site=None)
        assert stored and screening.subject_id == "S-001"
