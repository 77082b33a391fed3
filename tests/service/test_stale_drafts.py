"""Stale drafts: two amendments of the same version; once one is published the other is refused until rebased.

Runs on SQLite and, with ELIGO_TEST_DATABASE_URL set, on PostgreSQL (as the whole suite does).
"""

from __future__ import annotations

import dataclasses

import pytest

from rules.protocol import CriterionDef, VariableDef
from service import versions
from service.amendments_rebase import merge
from service.infra.models import db
from tests.service.conftest import page_token

SEED = "/api/v1/protocols/NCT07193667"
SIGNED = {"password": "pw-admin", "reason": "approved"}
IN03C_A = "hgb >= 55 g/L"  # draft A's change, published as v2


def _rule(app, number: int, code: str) -> str:
    with app.app_context():
        return next(c.rule for c in versions.find_version("NCT07193667", number).criteria if c.code == code)


def _edit(app, number: int, code: str, rule: str) -> None:
    with app.app_context():
        criterion = next(c for c in versions.find_version("NCT07193667", number).criteria if c.code == code)
        criterion.rule = rule
        db.session.commit()


@pytest.fixture
def two_drafts(app, client):
    """Drafts v2 (A) and v3 (B) both amended from v1; A changes IN-03c and is published."""
    assert client.post(f"{SEED}/versions", json={"from": 1}).status_code == 201
    assert client.post(f"{SEED}/versions", json={"from": 1}).status_code == 201
    _edit(app, 2, "IN-03c", IN03C_A)
    assert client.post(f"{SEED}/versions/2/publish", json=SIGNED).status_code == 200
    return 3


def test_publishing_a_stale_draft_is_refused_with_what_was_published_since(app, client, two_drafts):
    original = _rule(app, 1, "IN-03c")
    response = client.post(f"{SEED}/versions/3/publish", json=SIGNED)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert "drafted from version 1" in error["message"] and "rebase the draft onto version 2" in error["message"]
    assert [(e["version"], e["published_by"]) for e in error["errors"]] == [(2, "admin")]
    assert client.get(f"{SEED}/versions/3").get_json()["status"] == "draft"
    assert client.get(SEED).get_json()["current_version"] == 2
    assert _rule(app, 2, "IN-03c") == IN03C_A != original  # the published change stands


def test_a_clean_rebase_takes_the_published_change_and_keeps_the_drafts(app, client, two_drafts):
    _edit(app, 3, "IN-03a", "wbc >= 2.9 x10^9/L")
    response = client.post(f"{SEED}/versions/3/rebase")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["based_on"], body["conflicts"]) == (2, [])
    assert body["taken_from_current"] == ["criteria IN-03c"]
    assert _rule(app, 3, "IN-03c") == IN03C_A
    assert _rule(app, 3, "IN-03a") == "wbc >= 2.9 x10^9/L"
    # The summary of changes is now against v2: exactly the draft's own change.
    rows = client.get(f"{SEED}/versions/3/summary").get_json()
    assert (rows["from"], [r["criterion"] for r in rows["rows"]]) == (2, ["IN-03a"])
    assert client.post(f"{SEED}/versions/3/publish", json=SIGNED).status_code == 200
    assert _rule(app, 3, "IN-03c") == IN03C_A


def test_both_changing_a_criterion_differently_is_a_conflict_the_draft_keeps_its_own(app, client, two_drafts):
    _edit(app, 3, "IN-03c", "hgb >= 50 g/L")
    body = client.post(f"{SEED}/versions/3/rebase").get_json()
    assert body["based_on"] == 2
    [conflict] = body["conflicts"]
    assert (conflict["part"], conflict["key"]) == ("criteria", "IN-03c")
    assert (conflict["current"]["rule"], conflict["draft"]["rule"]) == (IN03C_A, "hgb >= 50 g/L")
    assert "differently" in conflict["message"]
    assert _rule(app, 3, "IN-03c") == "hgb >= 50 g/L"
    # Nothing is lost from view: the diff against the current version shows the draft's IN-03c.
    diff = client.get(f"{SEED}/diff?from=2&to=3").get_json()
    assert [c["key"] for c in diff["criteria"]] == ["IN-03c"]


def test_the_same_change_on_both_sides_is_no_conflict(app, client, two_drafts):
    _edit(app, 3, "IN-03c", IN03C_A)
    body = client.post(f"{SEED}/versions/3/rebase").get_json()
    assert (body["conflicts"], body["taken_from_current"]) == ([], [])
    assert client.get(f"{SEED}/diff?from=2&to=3").get_json()["criteria"] == []


def test_rebasing_a_current_draft_or_a_published_version_is_refused(client, two_drafts):
    assert client.post(f"{SEED}/versions/2/rebase").status_code == 422
    assert client.post(f"{SEED}/versions/3/rebase").status_code == 200
    response = client.post(f"{SEED}/versions/3/rebase")
    assert response.status_code == 409
    assert "already based on the current version 2" in response.get_json()["error"]["message"]


def test_only_writers_rebase(client_as, two_drafts):
    assert client_as("screener").post(f"{SEED}/versions/3/rebase").status_code == 403
    assert client_as("writer").post(f"{SEED}/versions/3/rebase").status_code == 200


def test_the_signing_page_says_so_and_a_writer_rebases_from_it(app, signed_in, two_drafts):
    with app.app_context():
        draft_id = versions.find_version("NCT07193667", 3).id
    reviewer = signed_in("reviewer")
    page = reviewer.get(f"/admin/sign/?version_id={draft_id}").get_data(as_text=True)
    assert "has been published since" in page and "rebase the draft onto version 2" in page
    assert 'name="password"' not in page  # nobody is asked to sign what cannot be published
    writer = signed_in("writer")
    index = writer.get("/admin/").get_data(as_text=True)
    assert "Rebase onto v2" in index
    response = writer.post("/admin/rebase/", data={"version_id": draft_id, "csrf_token": page_token(index)})
    assert response.status_code == 302
    assert _rule(app, 3, "IN-03c") == IN03C_A
    page = reviewer.get(f"/admin/sign/?version_id={draft_id}").get_data(as_text=True)
    assert 'name="password"' in page and "published since" not in page


# -- the merge itself, on protocol definitions ------------------------------------------------


def _criteria(definition, change):
    return dataclasses.replace(definition, criteria=tuple(change(list(definition.criteria))))


def test_additions_and_removals_on_either_side_are_merged_in_order(seed):
    new = CriterionDef("IN-99", "inclusion", "Weighs at least 40 kg", "weight >= 40 kg")
    current = _criteria(seed, lambda cs: [*cs[:2], new, *cs[2:]])  # published: a criterion added after IN-02
    draft = _criteria(seed, lambda cs: [c for c in cs if c.code != "IN-03j"])  # draft: one removed
    result = merge(seed, current, draft)
    codes = [c.code for c in result.definition.criteria]
    assert codes[:3] == ["IN-01", "IN-02", "IN-99"] and "IN-03j" not in codes
    assert len(codes) == len(seed.criteria)
    assert result.conflicts == [] and result.taken == ["criteria IN-99"]


def test_a_removal_against_a_change_is_a_conflict(seed):
    current = _criteria(seed, lambda cs: [c for c in cs if c.code != "IN-03c"])
    draft = _criteria(
        seed, lambda cs: [dataclasses.replace(c, rule="hgb >= 55 g/L") if c.code == "IN-03c" else c for c in cs]
    )
    result = merge(seed, current, draft)
    [conflict] = result.conflicts
    assert (conflict.key, conflict.current, conflict.draft["rule"]) == ("IN-03c", None, "hgb >= 55 g/L")
    assert "removed it" in conflict.sentence()
    assert any(c.code == "IN-03c" for c in result.definition.criteria)


def test_variables_merge_one_by_one(seed):
    def change(definition, name, **values):
        return dataclasses.replace(
            definition,
            variables=tuple(dataclasses.replace(v, **values) if v.name == name else v for v in definition.variables),
        )

    current = change(seed, "hgb", maximum=251.5)
    draft = change(seed, "anc", help="absolute neutrophil count, from the local lab")
    extra = VariableDef("bmi_note", "BMI note", "boolean")
    draft = dataclasses.replace(draft, variables=(*draft.variables, extra))
    result = merge(seed, current, draft)
    merged = {v.name: v for v in result.definition.variables}
    assert merged["hgb"].maximum == 251.5 and merged["anc"].help.endswith("local lab") and "bmi_note" in merged
    assert result.taken == ["variables hgb"] and result.conflicts == []


def test_a_publication_committed_by_another_request_meanwhile_counts(app, client):
    """Both drafts loaded in one session; the other is published by another request; this one is refused."""
    client.post(f"{SEED}/versions", json={"from": 1})
    client.post(f"{SEED}/versions", json={"from": 1})
    with app.app_context():
        draft = versions.find_version("NCT07193667", 3)
        assert [v.status for v in draft.protocol.versions] == ["published", "draft", "draft"]  # loaded now
        with app.app_context():  # another request, in a session of its own
            assert client.post(f"{SEED}/versions/2/publish", json=SIGNED).status_code == 200
        assert draft.protocol.versions[1].status == "draft"  # this session has not seen it
        with pytest.raises(versions.StaleDraft, match=r"version 2 .* has been published since"):
            versions.publish(draft, versions.Signature("reviewer", "approved"))


def test_the_versions_list_rebases_the_selected_draft_and_lists_conflicts(app, signed_in, two_drafts):
    _edit(app, 3, "IN-03c", "hgb >= 50 g/L")
    with app.app_context():
        draft_id = versions.find_version("NCT07193667", 3).id
    writer = signed_in("writer")
    token = page_token(writer.get("/admin/versions/").get_data(as_text=True))
    response = writer.post(
        "/admin/versions/action/",
        data={"action": "rebase", "rowid": str(draft_id), "csrf_token": token},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "version 3 is now based on version 2" in page
    assert "1 conflict(s)" in page and "criteria IN-03c: the published version changed it and the draft" in page
    assert _rule(app, 3, "IN-03c") == "hgb >= 50 g/L"
