"""Protocol versions: seeded, amended, published through their test cases, and immutable once published."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from sqlalchemy import text

import rules
from service import versions
from service.infra.models import Criterion, ImmutableVersionError, ProtocolVersion, db

SEED = "/api/v1/protocols/NCT07193667"


def test_seed_is_version_1_published_with_its_hash(client, seed):
    body = client.get(f"{SEED}/versions/1").get_json()
    assert (body["status"], body["content_hash"]) == ("published", seed.content_hash)
    assert len(body["criteria"]) == len(seed.criteria)
    assert any(v["name"] == "crcl" and v["formula"] for v in body["variables"])
    assert body["test_cases"] == len(seed.test_cases)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_is_the_protocol_file(client, seed, fmt):
    response = client.get(f"{SEED}/versions/1/export?format={fmt}")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert rules.loads_protocol(response.get_data(as_text=True)).content_hash == seed.content_hash


def test_amendment_is_a_draft_copy(client):
    response = client.post(f"{SEED}/versions", json={})
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/versions/2")
    draft = response.get_json()
    assert (draft["version"], draft["status"], draft["based_on"], draft["content_hash"]) == (2, "draft", 1, None)


def _edit_rule(app, number: int, code: str, rule: str) -> None:
    with app.app_context():
        version = versions.find_version("NCT07193667", number)
        criterion = next(c for c in version.criteria if c.code == code)
        criterion.rule = rule
        db.session.commit()


def test_publishing_an_amendment_changes_the_current_version(app, client, seed):
    client.post(f"{SEED}/versions")
    _edit_rule(app, 2, "IN-03c", "hgb >= 55 g/L")
    response = client.post(f"{SEED}/versions/2/publish", json={"password": "pw-admin", "reason": "approved"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "published"
    assert body["content_hash"] not in (None, seed.content_hash)
    assert client.get(SEED).get_json()["current_version"] == 2


def test_publish_is_refused_when_a_test_case_fails(app, client):
    client.post(f"{SEED}/versions")
    _edit_rule(app, 2, "IN-03b", "anc >= 2.5 x10^9/L")
    response = client.post(f"{SEED}/versions/2/publish", json={"password": "pw-admin", "reason": "approved"})
    assert response.status_code == 422
    failures = response.get_json()["error"]["errors"]
    first = failures[0]
    assert first["test_case"] == "SLE subject meeting every criterion"
    assert first["expected"]["decision"] == "eligible" and first["got"]["decision"] == "not_eligible"
    assert client.get(f"{SEED}/versions/2").get_json()["status"] == "draft"


def test_published_rows_cannot_change_through_the_orm(app):
    with app.app_context():
        criterion = db.session.execute(db.select(Criterion).filter_by(code="IN-03c")).scalar_one()
        criterion.rule = "hgb >= 50 g/L"
        with pytest.raises(ImmutableVersionError, match="published"):
            db.session.commit()
        db.session.rollback()
        version = db.session.get(ProtocolVersion, criterion.version_id)
        version.title = "renamed"
        with pytest.raises(ImmutableVersionError):
            db.session.commit()
        db.session.rollback()
        db.session.delete(version)
        with pytest.raises(ImmutableVersionError):
            db.session.commit()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE criteria SET rule = 'hgb >= 50 g/L' WHERE code = 'IN-03c'",
        "DELETE FROM criteria WHERE code = 'IN-03c'",
        "INSERT INTO cohorts (version_id, position, code, label) VALUES (1, 9, 'X', 'X')",
        "UPDATE protocol_versions SET title = 'renamed' WHERE number = 1",
        "UPDATE protocol_versions SET status = 'draft' WHERE number = 1",
        "DELETE FROM protocol_versions WHERE number = 1",
    ],
)
def test_the_database_itself_refuses_changes_to_published_versions(app, statement):
    with (
        app.app_context(),
        pytest.raises(sqlalchemy.exc.DBAPIError, match="immutable"),
        db.engine.begin() as connection,
    ):
        connection.execute(text(statement))


def test_a_published_version_can_be_retired(app):
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE protocol_versions SET status = 'retired' WHERE number = 1"))
        assert versions.find_protocol("NCT07193667").current() is None


def test_import_makes_a_draft_and_refuses_bad_files(client, seed):
    text_file = rules.dump_protocol(seed)
    response = client.post("/api/v1/protocols/import", data=text_file, content_type="application/yaml")
    assert response.status_code == 201
    assert (response.get_json()["version"], response.get_json()["status"]) == (2, "draft")
    bad = text_file.replace("rule: wbc >= 3 x10^9/L", "rule: wbc >= 3 mg/dL")
    response = client.post("/api/v1/protocols/import", data=bad, content_type="application/yaml")
    assert response.status_code == 422
    (problem,) = response.get_json()["error"]["errors"]
    assert problem["message"] == (
        "`mg/dL` does not fit `wbc` (x10^9/L): `mg/dL` is a mass concentration and `x10^9/L` is a count per volume"
    )
    assert (problem["line"], problem["column"]) == (1, 8)
    assert len(client.get(SEED).get_json()["versions"]) == 2


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("get", "/api/v1/protocols/NOPE", {}, 404),
        ("get", f"{SEED}/versions/9", {}, 404),
        ("get", f"{SEED}/versions/1/export?format=xml", {}, 400),
        ("post", f"{SEED}/versions", {"json": {"from": "one"}}, 422),
        ("post", f"{SEED}/versions", {"json": {"form": 1}}, 400),
        ("post", f"{SEED}/versions/1/publish", {"json": {"password": "pw-admin", "reason": "again"}}, 422),
        ("post", f"{SEED}/versions/1/publish", {}, 400),
        ("post", "/api/v1/protocols/import", {"data": "protocol: [unclosed", "content_type": "application/yaml"}, 422),
        ("post", "/api/v1/protocols/import", {"data": "", "content_type": "application/yaml"}, 400),
    ],
)
def test_version_errors_are_clear(client, method, url, kwargs, status):
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"]["message"]


def test_a_draft_is_compiled_once_per_content(app, client):
    """The engine never frees a ruleset: previews of an unchanged draft must not compile it again."""
    from service.infra.registry import registry

    client.post(f"{SEED}/versions")
    with app.app_context():
        draft = versions.find_version("NCT07193667", 2)
        first = registry().compiled(draft)
        assert registry().compiled(draft) is first
        next(c for c in draft.criteria if c.code == "IN-03c").rule = "hgb >= 55 g/L"
        db.session.commit()
        assert registry().compiled(draft) is not first


def test_the_cli_lists_each_failing_test_case_when_publishing_is_refused(app, client, monkeypatch, database_url):
    from click.testing import CliRunner

    from service.cli import main

    client.post(f"{SEED}/versions")
    _edit_rule(app, 2, "IN-03b", "anc >= 2.5 x10^9/L")
    monkeypatch.setenv("ELIGO_DATABASE_URL", database_url)
    monkeypatch.setenv("ELIGO_DEMO_ACCOUNTS", "false")
    args = ["publish", "NCT07193667", "2", "--user", "reviewer", "--reason", "approved"]
    result = CliRunner().invoke(main, args, input="pw-reviewer\n")
    assert result.exit_code == 1
    assert "✗ SLE subject meeting every criterion: expected {'decision': 'eligible'" in result.output
    assert result.output.rstrip().endswith("test case(s) failed")
    assert "not published: not published" not in result.output
    wrong = CliRunner().invoke(main, args, input="nope\n")
    assert wrong.exit_code == 1 and "the signature was refused" in wrong.output
