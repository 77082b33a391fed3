"""POST /api/v1/decide: the engine over HTTP, and a clear 4xx for every kind of bad request."""

from __future__ import annotations

import pytest

from service.infra.models import db


def test_protocols_are_listed(client, compiled):
    (protocol,) = client.get("/api/v1/protocols").get_json()
    assert protocol["protocol"] == "NCT07193667"
    assert protocol["content_hash"] == compiled.content_hash
    assert [c["code"] for c in protocol["cohorts"]] == ["SLE", "SSc", "IIM", "ITP"]


def test_a_subject_is_decided_and_explained(client, subject):
    response = client.post(
        "/api/v1/decide", json={"protocol": "NCT07193667", "subject": subject("SLE", {"anc": "800 /µL"})}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["decision"] == "not_eligible"
    anc = next(c for c in body["criteria"] if c["code"] == "IN-03b")
    assert anc["sentence"] == "ANC 0.8 x10^9/L (submitted 800 /µL) is below 1 x10^9/L"
    assert anc["rules_fired"] == ["IN-03b:fail"]


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "must be a JSON object"),
        ({"json": [1, 2]}, 400, "must be a JSON object"),
        ({"json": {"protocol": "NCT07193667", "subject": {}, "extra": 1}}, 400, "unknown fields"),
        ({"json": {"subject": {}}}, 422, "`protocol` is required"),
        ({"json": {"protocol": "NCT0", "subject": {}}}, 404, "no protocol 'NCT0'"),
        ({"json": {"protocol": "NCT07193667", "subject": [1]}}, 422, "`subject` must be an object"),
        ({"data": "x" * (2 * 1024 * 1024), "content_type": "application/json"}, 413, "larger than the 1 MiB limit"),
    ],
)
def test_bad_requests_get_a_clear_error(client, kwargs, status, message):
    response = client.post("/api/v1/decide", **kwargs)
    assert response.status_code == status
    assert message in response.get_json()["error"]["message"]


def test_bad_subject_values_name_each_field(client, subject):
    bad = subject("SLE", {"anc": {"value": 1, "unit": "mg/dL"}, "hgb": "lots"})
    response = client.post("/api/v1/decide", json={"protocol": "NCT07193667", "subject": bad})
    assert response.status_code == 422
    errors = {e["field"]: e for e in response.get_json()["error"]["errors"]}
    assert errors["anc.unit"] == {"field": "anc.unit", "value": "mg/dL", "expected": errors["anc.unit"]["expected"]}
    assert "x10^9/L" in errors["anc.unit"]["expected"]
    assert errors["hgb"]["value"] == "lots"


def test_unknown_route_is_json_404(client):
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.get_json()["error"]["status"] == 404


def test_drafts_are_decided_in_their_own_engine_process(app, client, subject, seed):
    client.post("/api/v1/protocols/NCT07193667/versions", json={})
    with app.app_context():
        from service import versions

        criterion = next(c for c in versions.find_version("NCT07193667", 2).criteria if c.code == "IN-03b")
        criterion.rule = criterion.rule.replace("anc >= 1 x10^9/L", "anc >= 1.5 x10^9/L")
        db.session.commit()
        draft_hash = versions.find_version("NCT07193667", 2).to_definition().content_hash
    body = {"protocol": "NCT07193667", "version": 2, "subject": subject("SLE", {"anc": 1.2})}
    assert client.post("/api/v1/decide", json=body).get_json()["decision"] == "not_eligible"
    assert client.post("/api/v1/decide", json={**body, "version": 1}).get_json()["decision"] == "eligible"
    published, drafts = app.extensions["eligo.engine"], app.extensions["eligo.draft_engine"]
    assert draft_hash in drafts.loaded and draft_hash not in published.loaded
    assert seed.content_hash in published.loaded


def test_the_engine_can_run_in_process_when_isolation_is_turned_off(make_app, subject, client_for):
    from rules.engine import DurableEngine

    app = make_app(ENGINE_ISOLATED=False)
    assert isinstance(app.extensions["eligo.engine"], DurableEngine)
    client = client_for(app, "admin")
    body = {"protocol": "NCT07193667", "subject": subject("SLE", {"anc": "800 /µL"})}
    assert client.post("/api/v1/decide", json=body).get_json()["decision"] == "not_eligible"


def test_a_body_error_names_the_field_the_value_and_what_was_expected(client):
    response = client.post("/api/v1/decide", json={"protocol": "NCT07193667", "version": "1", "subject": {}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["errors"] == [
        {"field": "version", "value": "1", "expected": "a version number, or nothing for the current one"}
    ]
    assert error["message"] == "`version` must be a version number, or nothing for the current one"


def test_unknown_fields_name_the_fields_the_body_takes(client):
    response = client.post("/api/v1/decide", json={"protocol": "NCT07193667", "subject": {}, "colour": "red"})
    assert response.status_code == 400
    (problem,) = response.get_json()["error"]["errors"]
    assert problem == {"field": "colour", "value": "red", "expected": "one of protocol, version, subject"}


def test_a_response_that_drifts_from_its_declaration_is_a_logged_500_when_checked(app, client, monkeypatch, caplog):
    """API_CHECK_RESPONSES (set by the schemathesis test) turns a drift between code and document into a failure."""
    from service import versions

    describe = versions.describe
    monkeypatch.setattr(versions, "describe", lambda v, full=False: {**describe(v, full), "version": "one"})
    assert client.get("/api/v1/protocols/NCT07193667").status_code == 200
    app.config["API_CHECK_RESPONSES"] = True
    response = client.get("/api/v1/protocols/NCT07193667")
    assert response.status_code == 500
    assert "does not fit its declared schema" in caplog.text
