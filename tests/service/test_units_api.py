"""Clinical units through the service: a temperature dictionary imports (it used to be a 500), the new
fields survive the database, and a unit pair that would convert wrongly is refused in words."""

from __future__ import annotations

import yaml

import rules
from rules.protocol import from_dict
from service.web.screening_pages import form_class

PROTOCOL = {
    "protocol": "P-UNITS",
    "title": "Units",
    "version": "1",
    "cohorts": [{"code": "A", "label": "A"}],
    "variables": [
        {"name": "temp", "type": "number", "unit": "°C", "units": ["°F"], "minimum": 25, "maximum": 45},
        {"name": "hba1c", "type": "number", "unit": "%", "units": ["mmol/mol"], "conversion": "hba1c"},
        {"name": "hgb", "type": "number", "unit": "g/L", "units": ["g/dL"], "lln": True},
    ],
    "criteria": [
        {"code": "FEVER", "kind": "exclusion", "text": "Fever", "rule": "temp >= 38 °C"},
        {"code": "HBA1C", "kind": "inclusion", "text": "HbA1c 7-10.5 %", "rule": "hba1c between 7 and 10.5 %"},
        {"code": "HGB", "kind": "inclusion", "text": "Hgb at least LLN", "rule": "hgb >= 1 x LLN"},
    ],
}


def test_a_units_protocol_imports_keeps_its_fields_and_decides(client):
    response = client.post("/api/v1/protocols/import", data=yaml.safe_dump(PROTOCOL), content_type="application/yaml")
    assert response.status_code == 201, response.get_json()
    exported = rules.loads_protocol(client.get("/api/v1/protocols/P-UNITS/versions/1/export").get_data(as_text=True))
    assert exported.content_hash == from_dict(PROTOCOL).content_hash
    subject = {
        "cohort": "A",
        "screening_date": "2026-11-02",
        "temp": "100.4 °F",
        "hba1c": {"value": 53, "unit": "mmol/mol"},
        "hgb": {"value": 11.9, "unit": "g/dL", "lln": 120},
    }
    decision = client.post("/api/v1/decide", json={"protocol": "P-UNITS", "version": 1, "subject": subject})
    assert decision.status_code == 200, decision.get_json()
    outcomes = {c["code"]: c["outcome"] for c in decision.get_json()["criteria"]}
    assert outcomes == {"FEVER": "fail", "HBA1C": "pass", "HGB": "fail"}


def test_a_pair_that_would_convert_wrongly_is_refused_with_every_problem(client):
    variables = [dict(v) for v in PROTOCOL["variables"]]
    del variables[1]["conversion"]
    variables[2]["units"] = ["g/dL", "L^9^9^9"]
    bad = yaml.safe_dump({**PROTOCOL, "variables": variables})
    response = client.post("/api/v1/protocols/import", data=bad, content_type="application/yaml")
    assert response.status_code == 422
    text = str(response.get_json())
    assert "unit `mmol/mol` does not convert to `%`" in text and "conversion" in text
    assert "unknown unit `L^9^9^9`: a power of a power" in text


def test_the_screening_form_asks_for_the_lln(app):
    compiled = rules.compile_protocol(from_dict(PROTOCOL))
    with app.test_request_context():
        form = form_class(compiled)(meta={"csrf": False})
    assert "hgb_lln" in form._fields and "hgb_uln" not in form._fields
    assert form["hgb_lln"].label.text == "LLN"
