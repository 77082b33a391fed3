"""Prefill from FHIR: each cohort's bundle gives what its criteria use, with sources; bad bundles are refused."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

import rules
from service import fhir

FIXTURES = Path(__file__).parent.parent / "fixtures" / "fhir"
URL = "/api/v1/protocols/NCT07193667/prefill"
DAY = dt.date(2026, 11, 2)


def bundle(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def run(compiled, name: str, cohort: str, **options: Any) -> fhir.Prefill:
    return fhir.prefill(compiled, bundle(name), screening_date=DAY, cohort=cohort, **options)


@pytest.mark.parametrize(
    ("name", "cohort", "version", "expected"),
    [
        ("sle_r4", "SLE", "R4", {"age": 40, "sex": "female", "hgb": {"value": 11.8, "unit": "g/dL"}}),
        ("ssc_r4", "SSc", "R4", {"sex": "male", "hgb": 132.0, "creatinine": {"value": 0.9, "unit": "mg/dL"}}),
        ("iim_r4", "IIM", "R4", {"muscle_enzyme": {"value": 2400.0, "uln": 170.0}, "gilbert_syndrome": "yes"}),
        ("itp_r4", "ITP", "R4", {"platelets": {"value": 25000.0, "unit": "/µL"}, "last_csf_date": "2026-10-25"}),
        ("sle_r5", "SLE", "R5", {"age": 36, "last_immunosuppressant_date": "2026-09-20"}),
    ],
)
def test_each_cohorts_bundle_prefills_what_its_criteria_use(compiled, name, cohort, version, expected):
    found = run(compiled, name, cohort)
    assert found.fhir_version == version
    assert {k: found.values.get(k) for k in expected} == expected
    assert set(found.sources) == set(found.values)
    lacking = {item["variable"] for item in found.lacking}
    assert not lacking & set(found.values)
    assert "sledai_2k" in lacking if cohort == "SLE" else "sledai_2k" not in lacking | set(found.values)


def test_the_prefilled_values_decide_once_the_screener_adds_the_rest(compiled, subject):
    found = run(compiled, "sle_r4", "SLE")
    completed = {**subject("SLE"), **found.values}  # the screener's answers, then the record's values
    assert rules.decide_reference(compiled, completed).decision == "eligible"
    itp = run(compiled, "itp_r4", "ITP")
    decision = rules.decide_reference(compiled, {**subject("ITP"), **itp.values})
    outcomes = {c.code: c.outcome for c in decision.criteria}
    assert (decision.decision, outcomes["IN-03b"], outcomes["EX-06"]) == ("not_eligible", "fail", "pass")


def test_the_most_recent_value_within_the_window_is_chosen_and_its_source_named(compiled):
    found = run(compiled, "sle_r4", "SLE")  # haemoglobin on 09-01, 10-20, and 11-20 (after screening)
    source = found.sources["hgb"]
    assert (source.resource, source.date, source.code, source.recorded) == (
        "Observation/sle-1-hgb",
        "2026-10-20",
        "http://loinc.org|718-7",
        "11.8 g/dL",
    )
    later = fhir.prefill(compiled, bundle("sle_r4"), screening_date=dt.date(2027, 3, 1), cohort="SLE")
    assert "hgb" not in later.values  # every result is older than the 90-day window
    assert {
        "variable": "hgb",
        "resource": "Observation/sle-1-hgb-later",
        "reason": "dated before 2026-12-01",
    } in later.notes
    wide = fhir.prefill(compiled, bundle("sle_r4"), screening_date=dt.date(2027, 3, 1), cohort="SLE", lookback_days=200)
    assert wide.values["hgb"] == {"value": 9.9, "unit": "g/dL"}


def test_ucum_units_reach_the_unit_machinery_and_reference_ranges_become_limits(compiled):
    found = run(compiled, "sle_r4", "SLE")
    assert found.values["anc"] == {"value": 2100.0, "unit": "/µL"}  # UCUM /uL is the accepted /µL
    assert found.values["wbc"] == 4.2  # 10*9/L is the canonical x10^9/L
    assert found.values["creatinine"] == 70.0  # umol/L is the canonical µmol/L
    assert found.values["tbil"] == {"value": 0.7, "unit": "mg/dL", "uln": 1.2}
    assert found.values["inr"] == {"value": 1.0, "uln": 1.2}  # {INR}: a plain number
    data = bundle("sle_r4")
    hgb = next(e["resource"] for e in data["entry"] if e["resource"]["id"] == "sle-1-hgb")
    hgb["valueQuantity"].update(value=7.3, unit="mmol/L", code="mmol/L")  # no accepted unit: not prefilled
    refused = fhir.prefill(compiled, data, screening_date=DAY, cohort="SLE")
    assert refused.values["hgb"] == {"value": 10.5, "unit": "g/dL"}  # the older result in a unit that converts
    assert any(n["resource"] == "Observation/sle-1-hgb" and "mmol/L" in n["reason"] for n in refused.notes)


def test_absence_is_never_a_no_and_refuted_or_not_taken_is(compiled):
    itp = run(compiled, "itp_r4", "ITP")
    assert itp.values["end_stage_renal_failure"] == "no"  # a refuted condition
    assert itp.values["malignancy_history"] == "yes" and itp.values["last_malignancy_date"] == "2016-02-01"
    ssc = run(compiled, "ssc_r4", "SSc")
    assert ssc.values["csf_received"] == "no"  # MedicationStatement not-taken
    assert ssc.values["immunosuppressant_received"] == "yes"
    assert "last_immunosuppressant_date" not in ssc.values  # ongoing: the last dose is the screener's to give
    assert "malignancy_history" in {item["variable"] for item in ssc.lacking}


def test_a_list_variable_takes_the_coded_records_of_its_system(app):
    from rules.compiler import compile_protocol
    from rules.protocol import load

    example = compile_protocol(load(Path(rules.__file__).parent / "protocols" / "examples" / "NCT02041533.yaml"))
    (name,) = [v.name for v in example.definition.variables if v.type == "list"]
    data = bundle("sle_r4")
    found = fhir.prefill(example, data, screening_date=DAY)
    entries = {e["code"]: e for e in found.values[name]}
    assert entries["L04AA06"] == {"code": "L04AA06", "system": "ATC", "start": "2026-01-05", "end": "2026-08-01"}
    assert "P01BA02" in entries


def test_r4_and_r5_are_told_apart_and_a_given_version_is_held_to(compiled):
    with pytest.raises(fhir.FhirBundleError) as refused:
        fhir.prefill(compiled, bundle("sle_r5"), screening_date=DAY, cohort="SLE", fhir_version="R4")
    assert "not valid FHIR R4" in refused.value.message
    assert any(p["field"].startswith("entry[") and "medication" in p["field"] for p in refused.value.problems)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda b: b["entry"][1]["resource"]["valueQuantity"].update(value="four"),
            "entry[1].resource.valueQuantity.value",
        ),
        (lambda b: b["entry"][1]["resource"].pop("code"), "entry[1].resource.code"),
        (lambda b: b["entry"][0]["resource"].update(resourceType="Pateint"), "entry[0].resource.resourceType"),
        (lambda b: b["entry"][0]["resource"].update(birthDate="02/03/1986"), "entry[0].resource.birthDate"),
        (lambda b: b.update(resourceType="Patient"), "resourceType"),
    ],
)
def test_a_bundle_that_is_not_valid_fhir_is_refused_with_the_path_of_its_problems(compiled, change, field):
    data = copy.deepcopy(bundle("sle_r4"))
    change(data)
    with pytest.raises(fhir.FhirBundleError) as refused:
        fhir.prefill(compiled, data, screening_date=DAY, cohort="SLE")
    assert field in [p["field"] for p in refused.value.problems]


def test_a_value_the_dictionary_would_refuse_is_not_prefilled_but_noted(compiled):
    data = bundle("sle_r4")
    for entry in data["entry"]:
        if entry["resource"]["id"] == "sle-1-alt":
            entry["resource"]["valueQuantity"]["value"] = 1e9  # past ALT's plausible range
        if entry["resource"]["id"] == "sle-1-ast":
            entry["resource"]["effectiveDateTime"] = "2026-10"  # a month is not a day
    found = fhir.prefill(compiled, data, screening_date=DAY, cohort="SLE")
    assert "alt" not in found.values and "ast" not in found.values
    reasons = {n["variable"]: n["reason"] for n in found.notes}
    assert "is not a plausible value between 0 and 20000 U/L" in reasons["alt"]
    assert reasons["ast"] == "no full date: a result must say the day it is of"
    lacking = {item["variable"]: item["reason"] for item in found.lacking}
    assert lacking["alt"].startswith("in the bundle, but not as the dictionary takes it")


def test_shapes_the_fhir_library_trips_over_are_refused_not_raised(compiled):
    for resource in ({"resourceType": 5}, {"resourceType": "Observation", "contained": [{"resourceType": 7}]}):
        data = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
        with pytest.raises(fhir.FhirBundleError):
            fhir.prefill(compiled, data, screening_date=DAY, cohort="SLE")


def test_a_bundle_of_two_patients_is_refused(compiled):
    data = bundle("sle_r4")
    data["entry"].append({"resource": {**data["entry"][0]["resource"], "id": "other"}})
    with pytest.raises(fhir.FhirBundleError, match="one subject"):
        fhir.prefill(compiled, data, screening_date=DAY, cohort="SLE")


# -- the API -----------------------------------------------------------------------------------


def test_the_api_answers_values_sources_and_what_is_lacking(client_as):
    body = {"bundle": bundle("sle_r4"), "screening_date": "2026-11-02", "cohort": "SLE"}
    response = client_as("screener").post(URL, json=body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert (answer["protocol"], answer["version"], answer["fhir_version"]) == ("NCT07193667", 1, "R4")
    assert answer["values"]["alt"] == {"value": 30.0, "uln": 40.0}
    assert answer["sources"]["alt"] == {
        "resource": "Observation/sle-1-alt",
        "date": "2026-10-20",
        "code": "http://loinc.org|1742-6",
        "recorded": "30 U/L",
    }
    lacking = {item["variable"]: item["reason"] for item in answer["lacking"]}
    assert lacking["sledai_2k"] == "no EHR code in the data dictionary"
    assert lacking["hbv_dna"] == "not in the bundle"


def test_the_apis_values_screen_as_they_are(client_as, screening_request):
    answer = client_as("screener").post(
        URL, json={"bundle": bundle("sle_r5"), "screening_date": "2026-11-02", "cohort": "SLE"}
    )
    request = screening_request("SLE")
    request["inputs"].update(answer.get_json()["values"])
    stored = client_as("screener").post("/api/v1/screenings", json=request)
    assert stored.status_code == 201, stored.get_json()
    outcomes = {c["code"]: c["outcome"] for c in stored.get_json()["result"]["criteria"]}
    # belimumab's last dose (2026-09-20, from the record) is within five 14-day half-lives: excluded
    assert (stored.get_json()["decision"], outcomes["EX-11"], outcomes["IN-03c"]) == ("not_eligible", "fail", "pass")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (
            {
                "bundle": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": {"resourceType": "Observation", "status": "final"}}],
                }
            },
            422,
            "bundle.entry[0].resource.code",
        ),
        ({"bundle": {"resourceType": "Patient"}}, 422, "bundle.resourceType"),
        ({"bundle": {"resourceType": "Bundle", "type": "collection"}, "cohort": "XYZ"}, 422, "cohort"),
        (
            {"bundle": {"resourceType": "Bundle", "type": "collection"}, "screening_date": "2999-01-01"},
            422,
            "screening_date",
        ),
        ({"bundle": {"resourceType": "Bundle", "type": "collection"}, "lookback_days": 0}, 422, "lookback_days"),
        ({"bundle": []}, 422, "bundle"),
        ({"bundle": {"resourceType": "Bundle", "type": "collection"}, "extra": 1}, 400, "extra"),
    ],
)
def test_bad_requests_name_the_field(client_as, body, status, field):
    response = client_as("screener").post(URL, json=body)
    assert response.status_code == status, response.get_json()
    assert field in [e["field"] for e in response.get_json()["error"]["errors"]]


def test_only_screeners_prefill_and_an_unknown_protocol_is_404(client_as):
    body = {"bundle": {"resourceType": "Bundle", "type": "collection"}}
    assert client_as(None).post(URL, json=body).status_code == 401
    assert client_as("writer").post(URL, json=body).status_code == 403
    assert client_as("screener").post("/api/v1/protocols/NOPE/prefill", json=body).status_code == 404
    assert client_as("screener").post(URL, data="not json").status_code == 400
