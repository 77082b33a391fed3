"""The API is one parent blueprint: its children's endpoints are named under it, and what they share holds for each."""

from __future__ import annotations

import pytest
from flask import url_for

from tests.service.conftest import page_token

SEED = "/api/v1/protocols/NCT07193667"


def test_every_api_route_is_an_endpoint_of_the_parent_blueprint(app):
    api_rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")]
    assert len(api_rules) > 20
    assert {rule.endpoint.split(".")[0] for rule in api_rules} == {"api_v1"}
    with app.test_request_context():
        assert url_for("api_v1.api.get_screening", screening_id=7) == "/api/v1/screenings/7"
        assert url_for("api_v1.amendments.get_impact", run_id=3) == "/api/v1/impact/3"
        assert url_for("api_v1.fhir_api.prefill", code="X") == "/api/v1/protocols/X/prefill"
        assert url_for("api_v1.openapi") == "/api/v1/openapi.json"


# One write of each child blueprint.
WRITES = [
    (f"{SEED}/versions", {}),
    (f"{SEED}/impact", {"from": 1, "to": 1}),
    (f"{SEED}/prefill", {"bundle": {"resourceType": "Bundle", "type": "collection", "entry": []}}),
]


@pytest.mark.parametrize(("path", "body"), WRITES, ids=["api", "amendments", "fhir_api"])
def test_a_browser_sessions_api_write_needs_the_csrf_header(signed_in, path, body):
    browser = signed_in("admin")
    refused = browser.post(path, json=body)
    assert refused.status_code == 400
    assert "CSRF" in refused.get_json()["error"]["message"]
    token = page_token(browser.get("/").get_data(as_text=True))
    assert browser.post(path, json=body, headers={"X-CSRFToken": token}).status_code < 300


@pytest.mark.parametrize(("path", "body"), WRITES, ids=["api", "amendments", "fhir_api"])
def test_a_bearer_token_client_writes_without_a_csrf_header(app, bearer, path, body):
    app.config["WTF_CSRF_ENABLED"] = True
    assert app.test_client().post(path, json=body, headers=bearer("admin")).status_code < 300
