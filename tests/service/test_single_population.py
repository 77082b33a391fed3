"""A single-population trial needs no dummy cohort: it imports, publishes, screens and shows its form."""

from __future__ import annotations

import rules
from rules.protocol import from_dict
from service import versions
from service.infra.models import db
from tests.service.conftest import page_token

SINGLE = {
    "protocol": "P-SINGLE",
    "title": "One population",
    "version": "1",
    "variables": [{"name": "age", "type": "number", "unit": "years", "minimum": 0, "maximum": 120}],
    "criteria": [{"code": "IN-1", "kind": "inclusion", "text": "Adults", "rule": "age >= 18 years"}],
}


def _publish(app) -> None:
    with app.app_context():
        versions.publish(versions.import_definition(from_dict(SINGLE), created_by="test"), versions.SYSTEM_SIGNATURE)
        db.session.commit()


def test_a_trial_without_cohorts_decides_without_one():
    compiled = rules.compile_protocol(from_dict(SINGLE))
    assert rules.decide(compiled, {"screening_date": "2026-11-02", "age": 40}).decision == "eligible"
    assert rules.decide(compiled, {"screening_date": "2026-11-02", "age": 12}).decision == "not_eligible"


def test_a_cohort_given_to_a_trial_without_cohorts_is_refused_by_name():
    compiled = rules.compile_protocol(from_dict(SINGLE))
    try:
        rules.decide(compiled, {"screening_date": "2026-11-02", "cohort": "A", "age": 40})
    except rules.SubjectInputErrors as errors:
        assert [(e.field, e.expected) for e in errors.errors] == [("cohort", "nothing: this protocol has no cohorts")]
    else:
        raise AssertionError("a cohort was accepted by a trial without cohorts")


def test_a_trial_without_cohorts_is_screened_through_the_api(app, client):
    _publish(app)
    body = {"protocol": "P-SINGLE", "subject_id": "S-1", "site": "SITE-1", "screening_date": "2026-11-02"}
    response = client.post("/api/v1/screenings", json={**body, "inputs": {"age": 30}})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["decision"] == "eligible"


def test_a_trial_without_cohorts_has_one_screening_form(app, signed_in):
    _publish(app)
    browser = signed_in("screener")
    choose = browser.get("/screen").get_data(as_text=True)
    assert "/screen/P-SINGLE/all" in choose
    form = browser.get("/screen/P-SINGLE/all").get_data(as_text=True)
    token = page_token(form)
    submitted = browser.post(
        "/screen/P-SINGLE/all",
        data={"csrf_token": token, "subject_id": "S-2", "site": "SITE-1", "screening_date": "2026-11-02", "age": "70"},
    )
    assert submitted.status_code in (200, 302, 303), submitted.get_data(as_text=True)[:500]
    page = browser.get(submitted.headers["Location"]).get_data(as_text=True) if submitted.status_code != 200 else ""
    assert "eligible" in (page or submitted.get_data(as_text=True))
