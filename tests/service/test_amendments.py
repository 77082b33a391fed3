"""Impact replay over a generated screening log, the summary of changes, and the SDTM exports."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner

from rules.errors import EngineCrashed
from service import impact
from service.cli import main
from service.infra.models import ImpactChange, ImpactRun, db

SEED = "/api/v1/protocols/NCT07193667"
ANC_VALUES = [0.8, 1.0, 1.2, 1.4, 1.5, 2.0, 2.5, 3.0]  # 1.0 <= anc < 1.5 moves under a 1.5 threshold
# Under ANC >= 1.5: S-1, S-2, S-3 become not eligible; S-HBV (incomplete, ANC 1.2) too, as a failure
# now decides it; S-LOWHB was not eligible already.
EXPECTED_TRANSITIONS = {"eligible→not_eligible": 3, "incomplete→not_eligible": 1}


def _screen(client, subject, subject_id, **changes):
    inputs = subject("SLE", changes)
    body = {
        "protocol": "NCT07193667",
        "subject_id": subject_id,
        "site": "SITE-1",
        "cohort": inputs.pop("cohort"),
        "screening_date": inputs.pop("screening_date"),
        "inputs": inputs,
    }
    response = client.post("/api/v1/screenings", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def log(client, subject):
    """A screening log whose changes under a stricter ANC threshold are known in advance."""
    for i, anc in enumerate(ANC_VALUES):
        _screen(client, subject, f"S-{i}", anc=anc)
    _screen(client, subject, "S-HBV", anc=1.2, hbcab_positive=True)  # incomplete before and after
    _screen(client, subject, "S-LOWHB", anc=1.2, hgb=50)  # not eligible before and after
    return len(ANC_VALUES) + 2


def _amend_anc(app, client, threshold="1.5", rationale="Neutropenia risk after lymphodepletion"):
    client.post(f"{SEED}/versions")
    from service import versions

    with app.app_context():
        criterion = next(c for c in versions.find_version("NCT07193667", 2).criteria if c.code == "IN-03b")
        criterion.rule = criterion.rule.replace("anc >= 1 x10^9/L", f"anc >= {threshold} x10^9/L")
        criterion.rationale = rationale
        db.session.commit()


def test_impact_replay_reports_the_known_changes(app, client, log):
    _amend_anc(app, client)
    response = client.post(f"{SEED}/impact", json={"from": 1, "to": 2})
    assert response.status_code == 201
    run = response.get_json()
    assert response.headers["Location"] == f"/api/v1/impact/{run['id']}"
    assert (run["status"], run["total"], run["processed"]) == ("done", log, log)
    assert run["changed"] == 4
    assert run["transitions"] == EXPECTED_TRANSITIONS
    assert run["criteria"] == {"IN-03b": 4}
    assert run["to_status"] == "draft"
    changes = client.get(f"/api/v1/impact/{run['id']}/changes").get_json()
    assert sorted(c["subject_id"] for c in changes["items"]) == ["S-1", "S-2", "S-3", "S-HBV"]
    first = changes["items"][0]
    assert first["causes"] == ["IN-03b"]
    assert client.get(first["url"]).get_json()["subject_id"] == first["subject_id"]


def test_a_looser_amendment_moves_subjects_the_other_way(app, client, log):
    _amend_anc(app, client, threshold="0.5")
    run = client.post(f"{SEED}/impact", json={"from": 1, "to": 2}).get_json()
    assert run["transitions"] == {"not_eligible→eligible": 1}  # anc 0.8


def test_an_impact_run_can_be_cancelled(app, client, log):
    _amend_anc(app, client)
    with app.app_context():
        run = impact.start("NCT07193667", 1, 2)
        response = client.delete(f"/api/v1/impact/{run.id}")
        assert response.get_json()["status"] == "cancelled"
        finished = impact.execute(run.id)
        assert (finished.status, finished.processed) == ("cancelled", 0)


def test_a_replay_that_dies_half_way_keeps_whole_chunks_and_resumes_to_the_same_answer(app, client, log, monkeypatch):
    _amend_anc(app, client)
    real = impact.rules.outcomes_many
    calls = []

    def dies_on_the_third_chunk(*args):
        calls.append(1)
        if len(calls) == 3:
            raise EngineCrashed("the engine process crashed (exit code -11)")
        return real(*args)

    monkeypatch.setitem(app.config, "IMPACT_CHUNK", 3)
    monkeypatch.setattr(impact.rules, "outcomes_many", dies_on_the_third_chunk)
    app.config["IMPACT_INLINE"] = True
    with app.app_context():
        run = impact.start("NCT07193667", 1, 2)
        with pytest.raises(EngineCrashed):
            impact.execute(run.id)
        failed = db.session.get(ImpactRun, run.id)
        stored_changes = db.session.query(ImpactChange).filter_by(run_id=run.id).count()
        assert (failed.status, failed.processed) == ("failed", 6)
        assert stored_changes == failed.changed == sum(failed.transitions.values())  # nothing half-written

    monkeypatch.setattr(impact.rules, "outcomes_many", real)
    resumed = client.post(f"/api/v1/impact/{run.id}/resume").get_json()
    assert (resumed["status"], resumed["processed"], resumed["total"]) == ("done", log, log)
    assert resumed["transitions"] == EXPECTED_TRANSITIONS and resumed["changed"] == 4
    assert client.get(f"/api/v1/impact/{run.id}/changes").get_json()["total"] == 4
    assert client.post(f"/api/v1/impact/{run.id}/resume").status_code == 409  # done runs stay done


def test_an_impact_run_on_the_queue_finishes(app, client, log, drain):
    app.config["IMPACT_INLINE"] = False
    _amend_anc(app, client)
    response = client.post(f"{SEED}/impact", json={"from": 1, "to": 2})
    assert response.status_code == 202
    run_id = response.get_json()["id"]
    assert client.get(f"/api/v1/impact/{run_id}").get_json()["processed"] == 0  # waiting for a worker
    assert drain(app) == 1
    body = client.get(f"/api/v1/impact/{run_id}").get_json()
    assert (body["status"], body["changed"]) == ("done", 4)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"from": 1}, 422),
        ({"from": "1", "to": 2}, 422),
        ({"from": 1, "to": 9}, 404),
        ({"from": 1, "to": 1, "x": 1}, 400),  # an unknown field: 400, as in every body of the API
    ],
)
def test_impact_requests_are_checked(app, client, body, status):
    assert client.post(f"{SEED}/impact", json=body).status_code == status


def test_summary_of_changes_with_subjects_affected(app, client, log):
    _amend_anc(app, client)
    before_replay = client.get(f"{SEED}/versions/2/summary").get_json()
    assert before_replay["rows"][0]["affected"] is None
    client.post(f"{SEED}/impact", json={"from": 1, "to": 2})
    body = client.get(f"{SEED}/versions/2/summary").get_json()
    (row,) = body["rows"]
    assert row["criterion"] == "IN-03b"
    assert row["change"] == "ANC threshold moved: >= 1 x10^9/L → >= 1.5 x10^9/L (stricter)"
    assert row["before"].endswith(
        "[anc >= 1 x10^9/L and not (csf_received and last_csf_date within 2 weeks before screening)]"
    )
    assert "anc >= 1.5 x10^9/L" in row["after"]
    assert (row["rationale"], row["affected"]) == ("Neutropenia risk after lymphodepletion", 4)
    rows = list(csv.reader(io.StringIO(client.get(f"{SEED}/versions/2/summary?format=csv").get_data(as_text=True))))
    assert rows[0] == ["criterion", "change", "before", "after", "rationale", "subjects_affected"]
    assert rows[1][0] == "IN-03b" and rows[1][4] == "Neutropenia risk after lymphodepletion" and rows[1][5] == "4"
    markdown = client.get(f"{SEED}/versions/2/summary?format=markdown").get_data(as_text=True)
    assert markdown.splitlines()[2] == "| Criterion | Change | Before | After | Rationale | Subjects affected |"
    assert "| IN-03b | ANC threshold moved" in markdown
    assert (
        "4 of 10 stored screenings change decision (eligible→not_eligible: 3, incomplete→not_eligible: 1)" in markdown
    )


def test_changing_the_draft_after_a_replay_makes_its_figures_stale(app, client, log):
    _amend_anc(app, client)
    client.post(f"{SEED}/impact", json={"from": 1, "to": 2})
    affected = client.get(f"{SEED}/versions/2/summary").get_json()["rows"][0]["affected"]
    assert affected == 4
    with app.app_context():
        from service import versions

        criterion = next(c for c in versions.find_version("NCT07193667", 2).criteria if c.code == "IN-03c")
        criterion.rule = "hgb >= 65 g/L"
        db.session.commit()
    rows = client.get(f"{SEED}/versions/2/summary").get_json()["rows"]
    assert [r["affected"] for r in rows] == [None, None]


def test_diff_endpoint_and_markdown(app, client):
    _amend_anc(app, client)
    body = client.get(f"{SEED}/diff?from=1&to=2").get_json()
    (item,) = body["criteria"]
    assert (item["key"], item["changes"][0]["kind"]) == ("IN-03b", "threshold")
    markdown = client.get(f"{SEED}/diff?from=1&to=2&format=markdown").get_data(as_text=True)
    assert "- **IN-03b** (changed)" in markdown
    assert client.get(f"{SEED}/diff?from=1").status_code == 400
    assert client.get(f"{SEED}/diff?from=1&to=2&format=pdf").status_code == 400


def test_sdtm_ti_lists_every_criterion(client, seed):
    rows = list(csv.DictReader(io.StringIO(client.get(f"{SEED}/versions/1/sdtm/ti.csv").get_data(as_text=True))))
    assert list(rows[0]) == ["STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT", "IESCAT", "TIRL", "TIVERS"]
    assert len(rows) == len(seed.criteria)
    codes = [r["IETESTCD"] for r in rows]
    assert len(set(codes)) == len(codes)
    assert all(len(c) <= 8 and c[0].isalpha() and c.isalnum() for c in codes)
    by_code = {r["IETESTCD"]: r for r in rows}
    assert by_code["IN03B"]["IECAT"] == "INCLUSION" and by_code["IN03B"]["IESCAT"] == ""
    assert by_code["INSSC45"]["IESCAT"] == "SSc"
    assert by_code["EX08A"]["IECAT"] == "EXCLUSION"
    assert by_code["EX08A"]["TIRL"] == "hbsag_positive or (hbcab_positive and hbv_dna > ULN)"
    assert {r["STUDYID"] for r in rows} == {"NCT07193667"} and {r["TIVERS"] for r in rows} == {"1"}
    assert all(len(r["IETEST"]) <= 200 for r in rows)


def test_sdtm_ie_has_the_criteria_not_met_of_each_subjects_latest_screening(client, subject):
    _screen(client, subject, "S-9", anc=0.8)
    _screen(client, subject, "S-9", anc=0.8, hbsag_positive=True)  # the re-screening is the one reported
    _screen(client, subject, "S-8", hbcab_positive=True)  # unknown only: no IE record
    rows = list(
        csv.DictReader(io.StringIO(client.get("/api/v1/sdtm/ie.csv?protocol=NCT07193667").get_data(as_text=True)))
    )
    assert [(r["USUBJID"], r["IESEQ"], r["IETESTCD"], r["IECAT"], r["IEORRES"], r["IESTRESC"]) for r in rows] == [
        ("NCT07193667-SITE-1-S-9", "1", "IN03B", "INCLUSION", "N", "N"),
        ("NCT07193667-SITE-1-S-9", "2", "EX08A", "EXCLUSION", "Y", "Y"),
    ]
    assert rows[0]["IEDTC"] == "2026-11-02" and rows[0]["VISIT"] == "SCREENING" and rows[0]["DOMAIN"] == "IE"
    assert client.get("/api/v1/sdtm/ie.csv").status_code == 400


def test_command_line_diff_impact_and_summary(app, client, log, database_url, monkeypatch):
    _amend_anc(app, client)
    monkeypatch.setenv("ELIGO_DATABASE_URL", database_url)
    runner = CliRunner()
    result = runner.invoke(main, ["diff", "NCT07193667", "1", "2"])
    assert result.exit_code == 0 and "ANC threshold moved" in result.output
    result = runner.invoke(main, ["impact", "NCT07193667", "1", "2"])
    assert result.exit_code == 0, result.output
    assert "4 of 10 screenings change decision" in result.output
    assert "caused by IN-03b" in result.output
    result = runner.invoke(main, ["summary", "NCT07193667", "2", "--format", "csv"])
    assert result.output.splitlines()[1].startswith("IN-03b,")
    with app.app_context():
        assert db.session.query(ImpactRun).count() == 1
