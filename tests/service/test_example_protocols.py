"""The example protocols go through the service as a writer's file would: imported, published, screened.

Publishing runs each version's test cases on the draft engine after the database round trip, so
this is the proof that the examples' test cases pass "when the version is published"; the screening
form generated from each dictionary must then render every variable.
"""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

import rules
from rules.protocol import ProtocolDef
from service import versions
from service.models import db

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
