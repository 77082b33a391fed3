"""CSV exports cannot carry formulas into a spreadsheet; codes that reach URLs and files are identifiers."""

from __future__ import annotations

import csv
import io

import pytest

import rules
from service.csvsafe import cell


@pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_cells_are_neutralised(text):
    assert cell(text) == "'" + text


@pytest.mark.parametrize("value", ["plain", "IN-03b", 5, -5, 1.5, None, ""])
def test_other_cells_are_left_alone(value):
    assert cell(value) == value


def test_sdtm_and_summary_exports_neutralise_protocol_text(client_as):
    data = rules.seed_protocol().to_dict()
    data["criteria"][0]["text"] = '=HYPERLINK("http://evil.example","click")'
    data["criteria"][0]["rationale"] = "@SUM(1)"
    writer = client_as("writer")
    imported = writer.post("/api/v1/protocols/import", json=data)
    assert imported.status_code == 201, imported.get_json()
    number = imported.get_json()["version"]
    reviewer = client_as("reviewer")
    ti = reviewer.get(f"/api/v1/protocols/NCT07193667/versions/{number}/sdtm/ti.csv").get_data(as_text=True)
    cells = [c for row in csv.reader(io.StringIO(ti)) for c in row]
    assert '\'=HYPERLINK("http://evil.example","click")' in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    summary = reviewer.get(f"/api/v1/protocols/NCT07193667/versions/{number}/summary?from=1&format=csv")
    cells = [c for row in csv.reader(io.StringIO(summary.get_data(as_text=True))) for c in row]
    assert "'@SUM(1)" in cells


@pytest.mark.parametrize(("where", "code"), [("protocol", "=cmd|' /C calc'!A0"), ("cohort", "S S"), ("cohort", "-SLE")])
def test_protocol_and_cohort_codes_must_be_identifiers(client_as, where, code):
    data = rules.seed_protocol().to_dict()
    if where == "protocol":
        data["protocol"] = code
    else:
        old = data["cohorts"][0]["code"]
        data["cohorts"][0]["code"] = code
        for criterion in data["criteria"]:
            if "cohorts" in criterion:
                criterion["cohorts"] = [code if c == old else c for c in criterion["cohorts"]]
        for case in data["test_cases"]:
            if case["subject"].get("cohort") == old:
                case["subject"]["cohort"] = code
    response = client_as("writer").post("/api/v1/protocols/import", json=data)
    assert response.status_code == 422
    assert "is not an identifier" in response.get_data(as_text=True)
