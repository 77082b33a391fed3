"""A variable's EHR codes: read from the protocol file, checked, written back, compared in the diff."""

from __future__ import annotations

import dataclasses

import pytest

from rules import protocol
from rules.coding import Coding, as_lines, parse_line
from rules.diff import diff
from rules.errors import ProtocolError


def _with_coding(seed, name: str, coding) -> protocol.ProtocolDef:
    data = seed.to_dict()
    for variable in data["variables"]:
        if variable["name"] == name:
            variable["coding"] = coding
    return protocol.from_dict(data)


def test_the_seed_ships_codes_for_labs_conditions_and_medicines(seed):
    coded = {v.name: {str(c) for c in v.coding} for v in seed.variables}
    assert "http://loinc.org|1742-6" in coded["alt"]
    assert "http://snomed.info/sct|46177005" in coded["end_stage_renal_failure"]
    assert "http://www.whocc.no/atc|L04*" in coded["immunosuppressant_received"]
    assert coded["sle_classification_2019"] == set()  # a diagnosis is not a classification


def test_codings_survive_the_file_and_json_round_trip_with_the_same_hash(seed):
    for fmt in ("yaml", "json"):
        again = protocol.loads(protocol.dumps(seed, fmt))
        assert again.variables == seed.variables and again.content_hash == seed.content_hash
    text = protocol.dumps(seed)
    assert "  coding:\n  - system: http://loinc.org\n    code: 718-7\n" in text


def test_a_file_without_codings_keeps_its_hash(seed):
    bare = dataclasses.replace(seed, variables=tuple(dataclasses.replace(v, coding=()) for v in seed.variables))
    assert "coding" not in protocol.dumps(bare)
    assert protocol.loads(protocol.dumps(bare)).content_hash == bare.content_hash


@pytest.mark.parametrize(
    ("coding", "problem"),
    [
        ([{"system": "loinc", "code": "718-7"}], "not a code system URI"),
        ([{"system": "http://loinc.org", "code": "7187"}], "is not a LOINC code"),
        ([{"system": "http://www.whocc.no/atc", "code": "L0*4"}], "a prefix is written with one `*` at the end"),
        (["http://loinc.org 718-7"], "write system|code"),
        ([{"system": "http://loinc.org"}], "expected {system, code}"),
        ("http://loinc.org|718-7", "`coding` must be a list"),
    ],
)
def test_bad_codings_are_refused_naming_the_variable(seed, coding, problem):
    with pytest.raises(ProtocolError) as refused:
        _with_coding(seed, "hgb", coding)
    assert any("hgb" in p and problem in p for p in refused.value.problems), refused.value.problems


def test_system_code_lines_are_read_as_codings(seed):
    changed = _with_coding(seed, "hgb", ["http://loinc.org|718-7", {"system": "http://loinc.org", "code": "20509-6"}])
    hgb = next(v for v in changed.variables if v.name == "hgb")
    assert as_lines(hgb.coding) == "http://loinc.org|718-7\nhttp://loinc.org|20509-6"
    assert parse_line(" http://snomed.info/sct | 27503000 ") == Coding("http://snomed.info/sct", "27503000")


def test_matching_takes_prefixes_and_icd10_without_its_dot():
    assert Coding("http://www.whocc.no/atc", "L04*").matches("http://www.whocc.no/atc", "L04AA06")
    assert not Coding("http://www.whocc.no/atc", "L04*").matches("http://www.whocc.no/atc", "L03AA02")
    assert Coding("http://hl7.org/fhir/sid/icd-10-cm", "N18.6").matches("http://hl7.org/fhir/sid/icd-10-cm", "N186")
    assert not Coding("http://loinc.org", "718-7").matches("http://snomed.info/sct", "718-7")


def test_the_diff_names_codes_added_and_removed(seed):
    changed = _with_coding(seed, "hgb", [{"system": "http://loinc.org", "code": "20509-6"}])
    (change,) = [c for c in diff(seed, changed).variables if c.key == "hgb"]
    text = " ".join(d.text for d in change.changes)
    assert "EHR codes: added http://loinc.org|20509-6; removed http://loinc.org|718-7" in text
