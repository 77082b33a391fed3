"""Batch screening from CSV, over HTTP and from the command line: every row stored, or none."""

from __future__ import annotations

from click.testing import CliRunner

from service.cli import main
from service.infra.models import Screening, db

GOOD = """subject_id,site,screening_date,cohort,age [years],sex,weight [lb],anc [/µL],hgb [g/dL],hbsag_positive
S-1,SITE-1,2026-11-02,SLE,40,female,132,800,11.8,no
S-2,SITE-1,2026-11-02,SSc,52,male,170,2100,13.1,yes
S-3,SITE-2,2026-11-02,ITP,33,female,,,12.0,
"""


def _count(app) -> int:
    with app.app_context():
        return db.session.query(Screening).count()


def test_a_csv_is_screened_row_by_row(app, client):
    response = client.post("/api/v1/screenings/batch?protocol=NCT07193667", data=GOOD, content_type="text/csv")
    assert response.status_code == 201
    body = response.get_json()
    assert body["screened"] == 3
    first, second, third = body["rows"]
    assert (first["row"], first["decision"], first["failed"]) == (2, "not_eligible", ["IN-03b"])
    assert second["failed"] == ["EX-08a"]
    assert third["decision"] == "incomplete" and "anc" in third["missing"]
    stored = client.get(f"/api/v1/screenings/{first['screening_id']}").get_json()
    assert stored["inputs"]["anc"] == {"value": "800", "unit": "/µL"}
    assert _count(app) == 3


def test_one_bad_row_stores_nothing_and_names_every_problem(app, client):
    bad = GOOD.replace("S-2,SITE-1,2026-11-02,SSc,52,male,170,2100", "S-2,SITE-1,2026-11-02,SSc,fifty,male,170,2100")
    bad = bad.replace("12.0,", "40.0,")
    response = client.post("/api/v1/screenings/batch?protocol=NCT07193667", data=bad, content_type="text/csv")
    assert response.status_code == 422
    errors = response.get_json()["error"]["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(3, "inputs.age"), (4, "inputs.hgb")]
    assert _count(app) == 0


def test_bad_headers_and_shapes_are_refused(client):
    for data, message in [
        ("site,cohort\nA,SLE\n", "header"),
        ("subject_id,site,screening_date,cohort,anc [/µL\n", "header"),
        ("subject_id,site,screening_date,cohort\nS-1,A,2026-11-02\n", "cells"),
        ("", "empty"),
    ]:
        response = client.post("/api/v1/screenings/batch?protocol=NCT07193667", data=data, content_type="text/csv")
        assert response.status_code == 422, data
        assert message in response.get_json()["error"]["message"] + str(response.get_json()["error"].get("errors"))
    assert client.post("/api/v1/screenings/batch", data=GOOD, content_type="text/csv").status_code == 400


def test_the_command_line_screens_a_csv_with_progress(app, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ELIGO_DATABASE_URL", database_url)
    path = tmp_path / "subjects.csv"
    path.write_text(GOOD, encoding="utf-8")
    result = CliRunner().invoke(main, ["screen-csv", str(path)])
    assert result.exit_code == 0, result.output
    assert "S-1" in result.output and "not_eligible" in result.output
    assert result.output.strip().endswith("1 incomplete; 2 not_eligible")
    assert _count(app) == 3


def test_the_command_line_refuses_a_bad_csv(app, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ELIGO_DATABASE_URL", database_url)
    path = tmp_path / "subjects.csv"
    path.write_text(GOOD.replace(",132,", ",lots,"), encoding="utf-8")
    result = CliRunner().invoke(main, ["screen-csv", str(path)])
    assert result.exit_code == 1
    assert "row 2: inputs.weight: got 'lots'" in result.output
    assert _count(app) == 0


def test_import_export_and_publish_from_the_command_line(app, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("ELIGO_DATABASE_URL", database_url)
    runner = CliRunner()
    exported = runner.invoke(main, ["export", "NCT07193667"])
    assert exported.exit_code == 0 and exported.output.startswith("protocol: NCT07193667")
    path = tmp_path / "p.yaml"
    path.write_text(exported.output.replace("hgb >= 60 g/L", "hgb >= 55 g/L"), encoding="utf-8")
    imported = runner.invoke(main, ["import", str(path)])
    assert imported.output.strip() == "NCT07193667 version 2: draft"
    sign = ["--user", "reviewer", "--reason", "lower haemoglobin limit"]
    wrong = runner.invoke(main, ["publish", "NCT07193667", "2", *sign], input="not-it\n")
    assert wrong.exit_code == 1 and "the password does not match" in wrong.output
    published = runner.invoke(main, ["publish", "NCT07193667", "2", *sign], input="pw-reviewer\n")
    assert published.exit_code == 0, published.output
    again = runner.invoke(main, ["publish", "NCT07193667", "2", *sign], input="pw-reviewer\n")
    assert again.exit_code == 1 and "already published" in again.output


def test_a_batch_sent_again_with_its_key_is_answered_from_the_first_and_stored_once(app, client):
    url = "/api/v1/screenings/batch?protocol=NCT07193667"
    first = client.post(url, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "batch-7"})
    again = client.post(url, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "batch-7"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _count(app) == 3
    too_long = client.post(url, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "k" * 191})
    assert too_long.status_code == 400 and _count(app) == 3
