"""The example protocols go through the service as a writer's file would: imported, published, screened.

Publishing runs each version's test cases on the draft engine after the database round trip, so
this is the proof that the examples' test cases pass "when the version is published"; the screening
form generated from each dictionary must then render every variable.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib.resources import files
from typing import Any

import pytest

import rules
from rules.protocol import ProtocolDef
from service import versions
from service.infra.models import db

EXAMPLES = files("rules").joinpath("protocols/examples")
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if p.name.endswith(".yaml"))


def _publish(app, name: str) -> ProtocolDef:
    definition = rules.loads_protocol(EXAMPLES.joinpath(name).read_text(encoding="utf-8"))
    with app.app_context():
        version = versions.publish(versions.import_definition(definition, created_by="test"), versions.SYSTEM_SIGNATURE)
        db.session.commit()
        assert (version.status, version.content_hash) == ("published", definition.content_hash)
    return definition


@pytest.mark.parametrize("name", NAMES, ids=[n.removesuffix(".yaml") for n in NAMES])
def test_example_publishes_and_its_screening_form_renders(app, name):
    definition = _publish(app, name)
    browser = app.test_client()
    login = browser.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login).group(1)
    signed_in = browser.post("/login", data={"username": "screener", "password": "pw-screener", "csrf_token": token})
    assert signed_in.status_code == 302
    response = browser.get(f"/screen/{definition.protocol}/all")  # a single population: one form
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for variable in definition.variables:
        derived = variable.formula is not None or variable.condition is not None
        assert (f'name="{variable.name}"' in html) is not derived, variable.name  # derived values are not asked


def test_an_example_is_screened_through_the_api(app, client):
    definition = _publish(app, "NCT06993220.yaml")
    inputs = dict(definition.test_cases[0].subject)
    assert not definition.cohorts and "cohort" not in inputs
    body = {
        "protocol": definition.protocol,
        "subject_id": "HF-001",
        "site": "SITE-1",
        "screening_date": str(inputs.pop("screening_date")),
        "inputs": inputs,
    }
    response = client.post("/api/v1/screenings", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["decision"] == "eligible"


def _json(value: Any) -> Any:
    """A test-case value as a client sends it: dates as ISO strings, entries and lists kept."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def test_an_example_history_is_screened_through_the_api(app, client):
    definition = _publish(app, "NCT02824003.yaml")
    inputs = _json(dict(definition.test_cases[0].subject))
    body = {"protocol": definition.protocol, "site": "SITE-1", "screening_date": inputs.pop("screening_date")}
    insulin = {"code": "A10AE04", "label": "insulin glargine", "start": "2025-01-01", "end": "2026-08-02"}
    response = client.post(
        "/api/v1/screenings",
        json={**body, "subject_id": "T2D-001", "inputs": {**inputs, "medications": [*inputs["medications"], insulin]}},
    )
    assert response.status_code == 201, response.get_json()
    result = response.get_json()
    assert result["decision"] == "not_eligible"
    other = next(c for c in result["result"]["criteria"] if c["code"] == "EX-06")
    assert other["outcome"] == "fail" and "insulin glargine (A10AE04)" in other["sentence"]
    episodes = [{"code": "E16.0", "start": "2026-13-01"}, {"code": "860975", "start": "2026-10-01"}]
    bad = client.post(
        "/api/v1/screenings",
        json={**body, "subject_id": "T2D-002", "inputs": {**inputs, "severe_hypoglycaemia_episodes": episodes}},
    )
    assert bad.status_code == 422, bad.get_json()
    fields = sorted(e["field"] for e in bad.get_json()["error"]["errors"])
    assert fields == [
        "inputs.severe_hypoglycaemia_episodes[0].start",
        "inputs.severe_hypoglycaemia_episodes[1].code",  # an RxNorm number in an ICD-10-CM list
    ], fields
