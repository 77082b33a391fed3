"""Screening pages and the admin, through the test client with CSRF on, as in production."""

from __future__ import annotations

import re

import pytest

from service.infra.models import Criterion, Screening, db

SEED = "/api/v1/protocols/NCT07193667"


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


@pytest.fixture
def browser_as(app):
    """A signed-in browser-like client (session cookie, CSRF tokens from the pages)."""
    app.config["WTF_CSRF_ENABLED"] = True

    def sign_in(username: str):
        client = app.test_client()
        token = _token(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"username": username, "password": f"pw-{username}", "csrf_token": token})
        assert response.status_code == 302
        return client

    return sign_in


def test_login_refuses_a_wrong_password_and_unsafe_redirects(app):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    wrong = client.post("/login", data={"username": "screener", "password": "nope", "csrf_token": token})
    assert "Unknown username or wrong password." in wrong.get_data(as_text=True)
    right = client.post(
        "/login?next=https://evil.example/",
        data={"username": "screener", "password": "pw-screener", "csrf_token": token},
    )
    assert right.headers["Location"] == "/"
    assert app.test_client().post("/login", data={"username": "screener", "password": "pw-screener"}).status_code == 400


def test_signed_out_visitors_go_to_login(app):
    response = app.test_client().get("/screen/NCT07193667/SLE")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_the_form_is_generated_from_the_dictionary(browser_as, seed):
    html = browser_as("screener").get("/screen/NCT07193667/SLE").get_data(as_text=True)
    for section in ("Bone marrow", "Liver", "Kidney", "Serology", "SLE"):
        assert f"<legend>{section}</legend>" in html
    assert 'name="anc__unit"' not in html and "another unit goes after the number: 10⁹/L, /µL" in html
    assert 'name="alt_uln"' in html
    assert 'name="crcl"' not in html  # derived: computed, never typed
    site = re.search(r'<input[^>]*name="site"[^>]*>', html).group(0)
    assert 'value="SITE-1"' in site and 'type="hidden"' in site  # fixed: shown as text, not a tab stop


def _form(client, **values):
    page = client.get("/screen/NCT07193667/SLE").get_data(as_text=True)
    data = {"csrf_token": _token(page), "subject_id": "S-1", "site": "SITE-1", "screening_date": "2026-11-02"}
    data.update(values)
    return client.post("/screen/NCT07193667/SLE", data=data)


def test_bad_values_are_shown_beside_their_field_and_nothing_is_stored(app, browser_as):
    response = _form(browser_as("screener"), hgb="lots", anc="800 /µL")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Nothing was stored" in html
    assert re.search(r"field invalid.*?Haemoglobin.*?&#39;lots&#39;: expected a number in g/L", html, re.S)
    with app.app_context():
        assert db.session.query(Screening).count() == 0


def test_a_screening_is_decided_recorded_and_explained(browser_as):
    client = browser_as("screener")
    response = _form(client, anc="800 /µL", age="40", sex="female")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Not eligible" in html
    assert "ANC 0.8 ×10⁹/L (submitted 800 /µL) is below 1 ×10⁹/L" in html
    assert 'class="fail"' in html
    log = client.get("/log?decision=not_eligible").get_data(as_text=True)
    assert "S-1" in log and "1 screening." in log


def test_attrition_funnel_counts_the_subject_leaving_at_the_criterion_they_fail(browser_as):
    client = browser_as("screener")
    _form(client, anc="800 /µL")
    html = client.get("/protocols/NCT07193667/attrition").get_data(as_text=True)
    row = re.search(r"<strong>IN-03b</strong>.*?</tr>", html, re.S).group(0)
    assert re.search(r"<td>0</td><td>0%</td>\s*<td>−1</td>", row), row  # the one subject leaves at IN-03b


def test_protocols_are_listed_with_their_versions(browser_as):
    html = browser_as("reviewer").get("/admin/protocols/").get_data(as_text=True)
    assert "NCT07193667" in html and "v1 published" in html


def test_roles_guard_pages(browser_as):
    assert browser_as("screener").get("/admin/criteria/").status_code == 403
    assert browser_as("writer").get("/screen/NCT07193667/SLE").status_code == 403
    assert browser_as("writer").get("/admin/users/").status_code == 403
    assert browser_as("admin").get("/admin/users/").status_code == 200


def _criterion_id(app, number: int, code: str) -> int:
    with app.app_context():
        from service.infra.models import ProtocolVersion

        query = (
            db.select(Criterion.id)
            .join(ProtocolVersion)
            .where(ProtocolVersion.number == number, Criterion.code == code)
        )
        return db.session.execute(query).scalar_one()


def _edit_rule(client, criterion_id: int, rule: str):
    url = f"/admin/criteria/edit/?id={criterion_id}"
    page = client.get(url).get_data(as_text=True)
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    form.update(
        {
            "rule": rule,
            "kind": "inclusion",
            "text": "b. Neutrophil count",
            "cohorts": "",
            "version": re.search(r'<option selected value="(\d+)"', page).group(1),
        }
    )
    return client.post(url, data=form)


def test_a_bad_rule_is_refused_on_save_with_its_position(app, browser_as):
    writer = browser_as("writer")
    writer.post(
        "/api/v1/protocols/NCT07193667/versions",
        headers={"X-CSRFToken": _token(writer.get("/").get_data(as_text=True))},
    )
    criterion = _criterion_id(app, 2, "IN-03b")
    html = _edit_rule(writer, criterion, "anc >= 1.5 mg/dL").get_data(as_text=True)
    assert "`mg/dL` does not fit `anc` (x10^9/L): `mg/dL` is a mass concentration" in html
    assert "count per volume at line 1, column 8" in html
    assert "anc &gt;= 1.5 mg/dL\n       ^" in html
    with app.app_context():
        assert db.session.get(Criterion, criterion).rule.startswith("anc >= 1 x10^9/L")
    _edit_rule(writer, criterion, "anc >= 1.5 x10^9/L")
    with app.app_context():
        assert db.session.get(Criterion, criterion).rule == "anc >= 1.5 x10^9/L"


def test_published_criteria_cannot_be_edited_in_the_admin(app, browser_as):
    criterion = _criterion_id(app, 1, "IN-03b")
    html = _edit_rule(browser_as("writer"), criterion, "anc >= 1.5 x10^9/L").get_data(as_text=True)
    assert "version 1 is published and cannot change: start an amendment" in html
    with app.app_context():
        assert db.session.get(Criterion, criterion).rule.startswith("anc >= 1 x10^9/L")


def _action(client, action: str, version_id: int):
    page = client.get("/admin/versions/").get_data(as_text=True)
    return client.post(
        "/admin/versions/action/",
        data={"action": action, "rowid": str(version_id), "csrf_token": _token(page)},
        follow_redirects=True,
    )


def test_amend_and_publish_actions_respect_roles(app, browser_as):
    assert "Only writers start amendments." in _action(browser_as("reviewer"), "amend", 1).get_data(as_text=True)
    assert "Draft version 2 of NCT07193667 started" in _action(browser_as("writer"), "amend", 1).get_data(as_text=True)
    assert "Only reviewers publish." in _action(browser_as("writer"), "publish", 2).get_data(as_text=True)
    reviewer = browser_as("reviewer")
    page = _action(reviewer, "publish", 2).get_data(as_text=True)
    assert "Sign and publish NCT07193667 version 2" in page


def test_publishing_in_the_admin_is_signed_with_the_password_and_a_reason(app, browser_as, client):
    client.post(f"{SEED}/versions", json={})
    reviewer = browser_as("reviewer")
    page = reviewer.get("/admin/sign/?version_id=2").get_data(as_text=True)
    form = {"csrf_token": _token(page), "password": "pw-writer", "reason": "hgb limit per amendment 2"}
    refused = reviewer.post("/admin/sign/?version_id=2", data=form).get_data(as_text=True)
    assert "the signature was refused: the password does not match" in refused
    assert client.get(f"{SEED}/versions/2").get_json()["status"] == "draft"
    no_reason = reviewer.post("/admin/sign/?version_id=2", data={**form, "password": "pw-reviewer", "reason": ""})
    assert "This field is required." in no_reason.get_data(as_text=True)

    signed = reviewer.post(
        "/admin/sign/?version_id=2", data={**form, "password": "pw-reviewer"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "NCT07193667 version 2 published" in signed and "signed by reviewer" in signed
    version = client.get(f"{SEED}/versions/2").get_json()
    assert (version["published_by"], version["publish_reason"]) == ("reviewer", "hgb limit per amendment 2")


def test_try_it_decides_a_draft_without_storing(app, browser_as):
    writer = browser_as("writer")
    page = writer.get("/admin/tryit/?version_id=1").get_data(as_text=True)
    response = writer.post(
        "/admin/tryit/?version_id=1",
        data={
            "csrf_token": _token(page),
            "case": "HBcAb positive with HBV DNA not yet reported is incomplete",
            "subject": "",
        },
    )
    html = response.get_data(as_text=True)
    assert 'data-decision="incomplete">Version 1: Incomplete' in html  # the published version itself: nothing beside
    assert "not checked: HBV DNA, HBV DNA upper limit of normal missing" in html
    with app.app_context():
        assert db.session.query(Screening).count() == 0


def test_the_audit_trail_is_shown_read_only(browser_as):
    writer = browser_as("writer")
    html = writer.get("/admin/audit/").get_data(as_text=True)
    assert "NCT07193667 version 1" in html and "publish" in html
    assert writer.get("/admin/audit/new/").status_code in (302, 403, 404)
    assert writer.get("/admin/audit/edit/?id=1").status_code in (302, 403, 404)


def test_cohorts_are_typed_as_codes_and_checked(app, browser_as):
    writer = browser_as("writer")
    writer.post(
        "/api/v1/protocols/NCT07193667/versions",
        headers={"X-CSRFToken": _token(writer.get("/").get_data(as_text=True))},
    )
    criterion = _criterion_id(app, 2, "EX-12")
    url = f"/admin/criteria/edit/?id={criterion}"
    page = writer.get(url).get_data(as_text=True)
    assert re.search(r'<input[^>]*id="cohorts"[^>]*value=""', page)
    form = {
        "csrf_token": _token(page),
        "version": re.search(r'<option selected value="(\d+)"', page).group(1),
        "code": "EX-12",
        "kind": "exclusion",
        "text": "women who are pregnant",
        "rule": "pregnant or pregnancy_planned",
        "cohorts": "SSc, XYZ",
    }
    assert "unknown cohort XYZ: use IIM, ITP, SLE, SSc" in writer.post(url, data=form).get_data(as_text=True)
    writer.post(url, data={**form, "cohorts": "SSc, SLE"})
    with app.app_context():
        assert db.session.get(Criterion, criterion).cohorts == ["SSc", "SLE"]


def test_a_form_submitted_twice_stores_once_but_an_edited_resubmission_is_a_new_screening(app, browser_as):
    client = browser_as("screener")
    page = client.get("/screen/NCT07193667/SLE").get_data(as_text=True)
    key = re.search(r'name="submission" type="hidden" value="([0-9a-f]{32})"', page).group(1)
    data = {
        "csrf_token": _token(page),
        "submission": key,
        "subject_id": "S-1",
        "site": "SITE-1",
        "screening_date": "2026-11-02",
        "anc": "800 /µL",
    }
    first = client.post("/screen/NCT07193667/SLE", data=data)
    double = client.post("/screen/NCT07193667/SLE", data=data)
    assert first.status_code == double.status_code == 302
    assert first.headers["Location"] == double.headers["Location"]
    edited = client.post("/screen/NCT07193667/SLE", data={**data, "anc": "1800 /µL"})  # back, edit, submit
    assert edited.status_code == 302 and edited.headers["Location"] != first.headers["Location"]
    with app.app_context():
        assert db.session.query(Screening).count() == 2
