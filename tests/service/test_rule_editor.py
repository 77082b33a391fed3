"""The live rule editor's endpoints: every problem at once with its caret, the preview, the words it completes."""

from __future__ import annotations

import pytest

from service import versions
from service.infra.models import Variable, db
from tests.service.conftest import page_token

CHECK = "/admin/criteria/rule-check/"


@pytest.fixture
def draft_id(app) -> int:
    with app.app_context():
        draft = versions.amend("NCT07193667")
        db.session.commit()
        return draft.id


@pytest.fixture
def writer(signed_in):
    """A writer's browser session and the CSRF token its pages carry, as the editor's script sends it."""
    browser = signed_in("writer")
    token = page_token(browser.get("/admin/criteria/new/").get_data(as_text=True))
    browser.environ_base["HTTP_X_CSRFTOKEN"] = token
    return browser


def _check(client, version_id: int, text: str, kind: str | None = "inclusion"):
    return client.post(CHECK, json={"version_id": version_id, "kind": kind, "text": text})


def test_every_problem_of_a_rule_is_reported_at_once_with_its_caret(writer, draft_id):
    answer = _check(writer, draft_id, "anc >= 1 x10^9/L and hgbb >= 60 g/L\nand wbc >= 3 mmol/L")
    assert answer.status_code == 200
    problems = answer.get_json()["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [(1, 22), (2, 12)]
    unknown, unit = problems
    assert "unknown variable `hgbb`" in unknown["message"] and unknown["suggestion"] == "hgb"
    assert unknown["context"] == "anc >= 1 x10^9/L and hgbb >= 60 g/L\n                     ^"
    assert "mmol/L" in unit["message"] and unit["source"] == "rule"
    assert answer.get_json()["preview"] is None


def test_a_syntax_error_is_shown_with_its_place(writer, draft_id):
    problems = _check(writer, draft_id, "anc >= 1 x10^9/L and (hgb >= 60 g/L").get_json()["problems"]
    assert len(problems) == 1 and problems[0]["line"] == 1 and problems[0]["context"].endswith("^")


def test_a_valid_rule_is_previewed_in_the_words_screeners_read(writer, draft_id):
    answer = _check(writer, draft_id, "anc >= 1.5 x10^9/L and not pregnant", kind="exclusion").get_json()
    assert answer["problems"] == []
    assert answer["preview"] == "Not eligible if ANC is at least 1.5 x10^9/L and Pregnant: no."
    unless = _check(writer, draft_id, "alt <= 3 x ULN unless alt_elevation_myopathy").get_json()["preview"]
    assert unless == (
        "Eligible only if ALT is at most 3 x ULN, unless ALT elevation caused by inflammatory myopathy: yes."
    )


def test_a_named_condition_has_no_kind_and_takes_no_unless(writer, draft_id):
    answer = _check(writer, draft_id, "alt <= 3 x ULN unless alt_elevation_myopathy", kind=None).get_json()
    assert ["unless" in p["message"] for p in answer["problems"]] == [True]
    preview = _check(writer, draft_id, "hbsag_positive", kind=None).get_json()["preview"]
    assert preview == "True when HBsAg positive: yes."


def test_dictionary_problems_are_reported_with_the_rules(app, writer, draft_id):
    with app.app_context():
        anc = db.session.execute(db.select(Variable).filter_by(version_id=draft_id, name="anc")).scalar_one()
        anc.minimum, anc.maximum = 10, 1
        db.session.commit()
    problems = _check(writer, draft_id, "anc >= 1 x10^9/L and hgbb >= 60 g/L").get_json()["problems"]
    assert [p["source"] for p in problems] == ["dictionary", "rule"]
    assert "minimum 10" in problems[0]["message"] and problems[0]["line"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "inclusion", "text": "x"}, "version_id"),
        ({"version_id": 1, "kind": "sometimes", "text": "x"}, "kind"),
        ({"version_id": 1, "kind": "inclusion", "text": 3}, "text"),
        ({"version_id": 1, "kind": "inclusion", "text": "a" * 5000}, "text"),
        ([1, 2], "body"),
    ],
)
def test_a_bad_check_request_is_a_400_naming_the_field(writer, body, field):
    answer = writer.post(CHECK, json=body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["errors"][0]["field"] == field


def test_an_unknown_version_is_a_404(writer):
    assert _check(writer, 99999, "anc >= 1 x10^9/L").status_code == 404


def test_the_check_needs_the_csrf_token_and_a_writer(signed_in, draft_id):
    browser = signed_in("writer")
    assert _check(browser, draft_id, "anc >= 1 x10^9/L").status_code == 400  # no X-CSRFToken header
    screener = signed_in("screener")
    token = page_token(screener.get("/screen").get_data(as_text=True))
    screener.environ_base["HTTP_X_CSRFTOKEN"] = token
    assert _check(screener, draft_id, "anc >= 1 x10^9/L").status_code == 403


def test_the_words_to_complete_are_the_versions_dictionary(writer, draft_id):
    words = writer.get(f"/admin/criteria/rule-words/?version_id={draft_id}").get_json()
    anc = next(v for v in words["variables"] if v["name"] == "anc")
    assert anc["unit"] == "x10^9/L" and "/µL" in anc["units"]
    assert "screening_date" in {v["name"] for v in words["variables"]}
    assert {"days", "weeks", "x ULN", "g/L"} <= set(words["units"])


def test_the_criterion_and_condition_forms_load_the_editor(writer, draft_id):
    for url in ("/admin/criteria/new/", "/admin/variables/new/"):
        page = writer.get(url).get_data(as_text=True)
        assert 'id="rule-editor"' in page and "rule_editor.js" in page and "eligo-admin.css" in page
