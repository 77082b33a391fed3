"""Roles: every API endpoint refuses the roles that may not use it, and screeners see only their site."""

from __future__ import annotations

import pytest

SEED = "/api/v1/protocols/NCT07193667"


def _screening(subject, site="SITE-1", subject_id="S-1"):
    inputs = subject("SLE")
    return {
        "protocol": "NCT07193667",
        "subject_id": subject_id,
        "site": site,
        "cohort": inputs.pop("cohort"),
        "screening_date": inputs.pop("screening_date"),
        "inputs": inputs,
    }


ENDPOINTS = [
    # (method, url, body, roles allowed besides admin)
    ("get", "/api/v1/protocols", None, {"writer", "reviewer", "screener"}),
    ("get", f"{SEED}/versions/1", None, {"writer", "reviewer", "screener"}),
    ("post", f"{SEED}/versions", {}, {"writer"}),
    ("post", "/api/v1/protocols/import", "yaml", {"writer"}),
    ("post", f"{SEED}/versions/1/publish", None, {"reviewer"}),
    ("get", f"{SEED}/diff?from=1&to=1", None, {"writer", "reviewer"}),
    ("post", f"{SEED}/impact", {"from": 1, "to": 1}, {"reviewer"}),
    ("get", "/api/v1/sdtm/ie.csv?protocol=NCT07193667", None, {"reviewer"}),
    ("post", "/api/v1/screenings", "screening", {"screener"}),
    ("get", "/api/v1/screenings", None, {"screener", "reviewer"}),
    ("post", "/api/v1/decide", "decide", {"writer", "reviewer", "screener"}),
]


@pytest.mark.parametrize("role", ["writer", "reviewer", "screener"])
@pytest.mark.parametrize(("method", "url", "body", "allowed"), ENDPOINTS, ids=[f"{m} {u}" for m, u, _, _ in ENDPOINTS])
def test_each_role_is_refused_what_it_may_not_do(client_as, subject, seed, role, method, url, body, allowed):
    import rules

    kwargs = {}
    if body == "yaml":
        kwargs = {"data": rules.dump_protocol(seed), "content_type": "application/yaml"}
    elif body == "screening":
        kwargs = {"json": _screening(subject)}
    elif body == "decide":
        kwargs = {"json": {"protocol": "NCT07193667", "subject": subject("SLE")}}
    elif body is not None:
        kwargs = {"json": body}
    response = getattr(client_as(role), method)(url, **kwargs)
    if role in allowed:
        assert response.status_code not in (401, 403), response.get_json()
    else:
        assert response.status_code == 403
        assert f"you are {role}" in response.get_json()["error"]["message"]


def test_anonymous_callers_are_asked_to_sign_in(client_as):
    response = client_as(None).get("/api/v1/protocols")
    assert response.status_code == 401
    assert "Bearer" in response.get_json()["error"]["message"]
    assert client_as(None).get("/api/v1/openapi.json").status_code == 200


def test_a_wrong_token_is_not_a_user(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer not-a-token"
    assert client.get("/api/v1/protocols").status_code == 401


def test_screeners_screen_and_see_only_their_own_site(client_as, subject):
    screener, other = client_as("screener"), client_as("screener2")
    refused = screener.post("/api/v1/screenings", json=_screening(subject, site="SITE-2"))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["errors"][0] == {"field": "site", "value": "SITE-2", "expected": "SITE-1"}
    mine = screener.post("/api/v1/screenings", json=_screening(subject)).get_json()
    theirs = other.post("/api/v1/screenings", json=_screening(subject, site="SITE-2", subject_id="S-2")).get_json()
    assert [s["id"] for s in screener.get("/api/v1/screenings").get_json()["items"]] == [mine["id"]]
    assert screener.get("/api/v1/screenings?site=SITE-2").status_code == 403
    assert screener.get(f"/api/v1/screenings/{theirs['id']}").status_code == 404
    assert "SITE-2" not in screener.get("/api/v1/screenings.csv").get_data(as_text=True)
    assert client_as("reviewer").get("/api/v1/screenings").get_json()["total"] == 2


def test_stored_records_name_who_acted(client_as, client, subject):
    screening = client_as("screener").post("/api/v1/screenings", json=_screening(subject)).get_json()
    assert screening["created_by"] == "screener"
    client_as("writer").post(f"{SEED}/versions")
    published = (
        client_as("reviewer")
        .post(f"{SEED}/versions/2/publish", json={"password": "pw-reviewer", "reason": "approved"})
        .get_json()
    )
    assert published["published_by"] == "reviewer"


def test_api_writes_through_a_browser_session_need_the_csrf_header(app, subject):
    app.config["WTF_CSRF_ENABLED"] = True
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    signed_in = browser.post("/login", data={"username": "screener", "password": "pw-screener", "csrf_token": token})
    assert signed_in.status_code == 302
    assert browser.get("/api/v1/protocols").status_code == 200
    refused = browser.post("/api/v1/screenings", json=_screening(subject))
    assert refused.status_code == 400
    assert "CSRF" in refused.get_json()["error"]["message"]
    accepted = browser.post("/api/v1/screenings", json=_screening(subject), headers={"X-CSRFToken": token})
    assert accepted.status_code == 201
