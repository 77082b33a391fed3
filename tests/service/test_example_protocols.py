"""The example protocols go through the service as a writer's file would: imported, published, screened.

Publishing runs each version's test cases on the draft engine after the database round trip, so
this is the proof that the examples' test cases pass "when the version is published".
"""

from __future__ import annotations

from importlib.resources import files

import pytest

import rules
from service import versions
from service.models import db

EXAMPLES = files("rules").joinpath("protocols/examples")
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if p.name.endswith(".yaml"))


@pytest.mark.parametrize("name", NAMES, ids=[n.removesuffix(".yaml") for n in NAMES])
def test_example_imports_publishes_and_keeps_its_hash(app, name):
    definition = rules.loads_protocol(EXAMPLES.joinpath(name).read_text(encoding="utf-8"))
    with app.app_context():
        version = versions.import_definition(definition, created_by="test")
        versions.publish(version, versions.SYSTEM_SIGNATURE)
        db.session.commit()
        assert version.status == "published"
        assert version.content_hash == definition.content_hash


def test_an_example_is_screened_through_the_api(app, client):
    definition = rules.loads_protocol(EXAMPLES.joinpath("NCT06993220.yaml").read_text(encoding="utf-8"))
    with app.app_context():
        versions.publish(versions.import_definition(definition, created_by="test"), versions.SYSTEM_SIGNATURE)
        db.session.commit()
    inputs = dict(definition.test_cases[0].subject)
    body = {
        "protocol": definition.protocol,
        "subject_id": "HF-001",
        "site": "SITE-1",
        "cohort": inputs.pop("cohort"),
        "screening_date": str(inputs.pop("screening_date")),
        "inputs": inputs,
    }
    response = client.post("/api/v1/screenings", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["decision"] == "eligible"
