"""POST/GET /api/v1/screenings: decided, stored with the exact version, listed, exported, replayed."""

from __future__ import annotations

import csv
import io

import pytest

from service.infra.models import Screening, db


def _request(subject, **changes):
    inputs = dict(subject("SLE"))
    cohort = inputs.pop("cohort")
    screening_date = inputs.pop("screening_date")
    body = {
        "protocol": "NCT07193667",
        "subject_id": "S-001",
        "site": "SITE-1",
        "screening_date": screening_date,
        "cohort": cohort,
        "inputs": inputs,
    }
    body.update(changes)
    return body


def _count(app) -> int:
    with app.app_context():
        return db.session.query(Screening).count()


def test_a_screening_is_decided_and_stored_with_its_version(client, subject, seed):
    response = client.post("/api/v1/screenings", json=_request(subject))
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/screenings/{body['id']}"
    assert (body["decision"], body["version"], body["content_hash"]) == ("eligible", 1, seed.content_hash)
    assert body["result"]["criteria"][0]["code"] == "IN-01"
    assert client.get(f"/api/v1/screenings/{body['id']}").get_json() == body


def test_rescreening_links_to_the_previous_screening(client, subject):
    first = client.post("/api/v1/screenings", json=_request(subject, inputs={"age": 40})).get_json()
    assert first["decision"] == "incomplete"
    second = client.post("/api/v1/screenings", json=_request(subject)).get_json()
    assert second["previous_id"] == first["id"]
    other = client.post("/api/v1/screenings", json=_request(subject, subject_id="S-002")).get_json()
    assert other["previous_id"] is None


def test_every_seed_test_case_replays_to_the_same_record(client, seed):
    for case in seed.test_cases:
        if case.expect == "refused":
            continue  # stored nothing: see test_a_refused_seed_test_case_stores_nothing
        inputs = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in case.subject.items()}
        body = {
            "protocol": "NCT07193667",
            "subject_id": "S-REPLAY",
            "site": "SITE-1",
            "cohort": inputs.pop("cohort"),
            "screening_date": inputs.pop("screening_date"),
            "inputs": inputs,
        }
        stored = client.post("/api/v1/screenings", json=body).get_json()
        assert stored["decision"] == case.expect, case.name
        replay = client.post(f"/api/v1/screenings/{stored['id']}/replay").get_json()
        assert replay["same"] is True, case.name
        assert replay["result"] == stored["result"]


def test_screening_uses_a_chosen_published_version_and_refuses_drafts(client, subject):
    client.post("/api/v1/protocols/NCT07193667/versions")
    response = client.post("/api/v1/screenings", json=_request(subject, version=2))
    assert response.status_code == 422
    assert response.get_json()["error"]["errors"][0]["field"] == "version"
    assert client.post("/api/v1/screenings", json=_request(subject, version=1)).status_code == 201


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"colour": "red"}, 400, "colour"),
        ({"subject_id": ""}, 422, "subject_id"),
        ({"subject_id": "John Smith"}, 422, "subject_id"),
        ({"site": 7}, 422, "site"),
        ({"screening_date": "02/11/2026"}, 422, "screening_date"),
        ({"screening_date": "2999-01-01"}, 422, "screening_date"),
        ({"version": "1"}, 422, "version"),
        ({"version": 0}, 422, "version"),
        ({"version": 7}, 404, "version"),
        ({"protocol": "NCT0"}, 404, "protocol"),
        ({"cohort": "RA"}, 422, "cohort"),
        ({"inputs": []}, 422, "inputs"),
        ({"inputs": {"anc": {"value": 1, "unit": "mg/dL"}}}, 422, "inputs.anc.unit"),
        ({"inputs": {"anc": "lots"}}, 422, "inputs.anc"),
        ({"inputs": {"anc": 9000}}, 422, "inputs.anc"),
        ({"inputs": {"hbsag_positive": "perhaps"}}, 422, "inputs.hbsag_positive"),
        ({"inputs": {"anx": 1}}, 422, "inputs.anx"),
        ({"inputs": {"crcl": 80}}, 422, "inputs.crcl"),
        ({"inputs": {"cohort": "SLE"}}, 422, "inputs.cohort"),
    ],
)
def test_bad_requests_name_the_field_and_store_nothing(app, client, subject, changes, status, field):
    response = client.post("/api/v1/screenings", json=_request(subject, **changes))
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert field in [e["field"] for e in error["errors"]]
    assert all("expected" in e for e in error["errors"])
    assert _count(app) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "{", "content_type": "application/json"},
        {"data": "[]", "content_type": "application/json"},
        {"data": "protocol=NCT07193667", "content_type": "application/x-www-form-urlencoded"},
        {"data": "{}" + " " * (1024 * 1024), "content_type": "application/json"},
    ],
)
def test_unreadable_or_oversized_bodies_are_refused(app, client, kwargs):
    response = client.post("/api/v1/screenings", **kwargs)
    assert response.status_code in (400, 413)
    assert response.get_json()["error"]["message"]
    assert _count(app) == 0


def test_the_log_filters_and_pages(client, subject):
    for i, (site, anc) in enumerate([("A", 2.1), ("A", 0.5), ("B", 2.1), ("B", 2.1), ("B", 0.5)]):
        inputs = dict(_request(subject)["inputs"], anc=anc)
        client.post("/api/v1/screenings", json=_request(subject, subject_id=f"S-{i}", site=site, inputs=inputs))
    page = client.get("/api/v1/screenings?site=B&per_page=2").get_json()
    assert (page["total"], len(page["items"]), page["page"]) == (3, 2, 1)
    assert [s["subject_id"] for s in page["items"]] == ["S-4", "S-3"]
    assert client.get("/api/v1/screenings?decision=not_eligible").get_json()["total"] == 2
    assert (
        client.get("/api/v1/screenings?protocol=NCT07193667&version=1&from=2026-11-01&to=2026-11-30").get_json()[
            "total"
        ]
        == 5
    )
    assert client.get("/api/v1/screenings?from=2026-12-01").get_json()["total"] == 0
    assert client.get("/api/v1/screenings?page=2&per_page=4").get_json()["items"][0]["subject_id"] == "S-0"


@pytest.mark.parametrize(
    "query", ["decision=maybe", "from=yesterday", "version=one", "page=0", "per_page=501", "per_page=x"]
)
def test_bad_log_filters_are_400(client, query):
    response = client.get(f"/api/v1/screenings?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0]["field"] in query


def test_the_log_exports_as_csv(client, subject):
    inputs = dict(_request(subject)["inputs"], anc=0.5, hbcab_positive=True)
    created = client.post("/api/v1/screenings", json=_request(subject, inputs=inputs)).get_json()
    response = client.get("/api/v1/screenings.csv?site=SITE-1")
    assert response.mimetype == "text/csv"
    (row,) = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert row["id"] == str(created["id"])
    assert (row["decision"], row["failed"], row["unknown"]) == ("not_eligible", "IN-03b", "EX-08a")
    assert row["missing"] == "hbv_dna hbv_dna_uln"
    assert row["content_hash"] == created["content_hash"]


def test_missing_screening_is_404(client):
    assert client.get("/api/v1/screenings/999").status_code == 404
    assert client.post("/api/v1/screenings/999/replay").status_code == 404


def test_stored_screenings_cannot_be_changed(app, client, subject):
    import sqlalchemy.exc
    from sqlalchemy import text

    client.post("/api/v1/screenings", json=_request(subject))
    with (
        app.app_context(),
        pytest.raises(sqlalchemy.exc.DBAPIError, match="kept as recorded"),
        db.engine.begin() as connection,
    ):
        connection.execute(text("UPDATE screenings SET decision = 'eligible'"))


def test_openapi_document_describes_every_route(app, client):
    """The document is generated from the views: every route and method of the API is in it, none more."""
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {
        (path.replace("{", "<").replace("}", ">"), method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routes = {
        (rule.rule.replace("<int:", "<"), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == documented


def test_the_screening_schema_has_who_and_when(client):
    screening = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Screening"]
    assert {"created_at", "created_by"} <= set(screening["required"])


def test_a_malformed_idempotency_key_is_a_400_naming_the_header(client, subject):
    response = client.post("/api/v1/screenings", json=_request(subject), headers={"Idempotency-Key": "a b"})
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0]["field"] == "Idempotency-Key"


def test_a_refused_seed_test_case_stores_nothing_and_names_each_field(client, seed):
    (case,) = [c for c in seed.test_cases if c.expect == "refused"]
    inputs = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in case.subject.items()}
    body = {
        "protocol": "NCT07193667",
        "subject_id": "S-FUTURE",
        "site": "SITE-1",
        "cohort": inputs.pop("cohort"),
        "screening_date": inputs.pop("screening_date"),
        "inputs": inputs,
    }
    response = client.post("/api/v1/screenings", json=body)
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.get_json()["error"]["errors"])
    assert fields == sorted(f"inputs.{name}" for name in case.refused)
    assert "on or before the screening date 2026-11-02" in str(response.get_json())
    assert client.get("/api/v1/screenings?subject_id=S-FUTURE").get_json()["items"] == []
