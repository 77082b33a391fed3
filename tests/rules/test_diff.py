"""The semantic diff: every kind of change a reviewer needs named, on hand-built version pairs."""

from __future__ import annotations

import pytest

from rules.diff import diff, rule_changes
from rules.protocol import from_dict


def _amend(seed, criteria=None, variables=None, cohorts=None, drop=(), add=()):
    data = seed.to_dict()
    data["version"] = "2"
    for c in data["criteria"]:
        c.update((criteria or {}).get(c["code"], {}))
    for v in data["variables"]:
        v.update((variables or {}).get(v["name"], {}))
    for c in data["cohorts"]:
        c.update((cohorts or {}).get(c["code"], {}))
    data["criteria"] = [c for c in data["criteria"] if c["code"] not in drop] + list(add)
    return from_dict(data)


def _changes(result, key):
    item = next(i for i in result.criteria + result.variables + result.cohorts if i.key == key)
    return item


def test_identical_versions_have_no_diff(seed):
    assert diff(seed, seed).empty


@pytest.mark.parametrize(
    ("code", "rule", "kind", "text", "direction"),
    [
        (
            "IN-03b",
            "anc >= 1.5 x10^9/L and not (csf_received and last_csf_date within 2 weeks before screening)",
            "threshold",
            "ANC threshold moved: >= 1 x10^9/L → >= 1.5 x10^9/L (stricter)",
            "stricter",
        ),
        (
            "IN-03c",
            "hgb >= 50 g/L",
            "threshold",
            "Haemoglobin threshold moved: >= 60 g/L → >= 50 g/L (looser)",
            "looser",
        ),
        (
            "IN-03a",
            "wbc >= 3000 /µL",
            "unit",
            "White blood cell count threshold written in another unit: 3 x10^9/L → 3000 /µL (same value)",
            None,
        ),
        (
            "IN-03d",
            "alt <= 5 x ULN unless alt_elevation_myopathy",
            "threshold",
            "ALT limit moved: <= 3 x ULN → <= 5 x ULN (looser)",
            "looser",
        ),
        (
            "IN-03b",
            "anc >= 1 x10^9/L and not (csf_received and last_csf_date within 28 days before screening)",
            "window",
            "Last colony-stimulating factor dose window widened: 2 weeks → 28 days before screening",
            "stricter",
        ),
        (
            "EX-10",
            "other_trial_participation and last_other_trial_date within 1 months before screening",
            "window",
            "Last day in another clinical trial window narrowed: 3 months → 1 months before screening",
            None,
        ),
        (
            "IN-SSC-3",
            "diffuse_cutaneous_sclerosis or active_ild or rapidly_progressive_ild",
            "condition added",
            "branch added to `or`: rapidly_progressive_ild",
            "looser",
        ),
        ("IN-05", "informed_consent_signed", "condition removed", "condition removed: follow_up_compliance", None),
        (
            "IN-03c",
            "hgb >= 60 g/L unless gilbert_syndrome",
            "condition added",
            "exception added: gilbert_syndrome",
            "looser",
        ),
        (
            "IN-01",
            "age >= 18 years and age < 71 years",
            "threshold",
            "Age threshold moved: < 66 years → < 71 years (looser)",
            "looser",
        ),
        (
            "IN-02",
            "cd19_positive and hemodynamically_stable",
            "condition added",
            "condition added: hemodynamically_stable",
            "stricter",
        ),
    ],
)
def test_rule_changes_are_named(seed, code, rule, kind, text, direction):
    item = _changes(diff(seed, _amend(seed, {code: {"rule": rule}})), code)
    assert item.status == "changed"
    (change,) = [c for c in item.changes if c.kind == kind]
    assert change.text == text
    assert change.direction == direction


def test_a_range_change_is_named(seed):
    before = _amend(seed, {"IN-01": {"rule": "age between 18 and 65 years"}})
    item = _changes(diff(before, _amend(before, {"IN-01": {"rule": "age between 18 and 70 years"}})), "IN-01")
    (change,) = [c for c in item.changes if c.kind == "range"]
    assert (change.text, change.direction) == ("Age range changed: 18 years–65 years → 18 years–70 years", "looser")


def test_at_least_count_change(seed):
    rule = next(c.rule for c in seed.criteria if c.code == "IN-IIM-3").replace("at least 2 of", "at least 3 of")
    item = _changes(diff(seed, _amend(seed, {"IN-IIM-3": {"rule": rule}})), "IN-IIM-3")
    assert [(c.kind, c.text) for c in item.changes] == [("count", "at least 2 of → at least 3 of (stricter)")]


def test_logic_and_to_or_is_named(seed):
    item = _changes(
        diff(seed, _amend(seed, {"IN-05": {"rule": "informed_consent_signed or follow_up_compliance"}})), "IN-05"
    )
    assert {c.kind for c in item.changes} == {"logic"}
    assert "moved from `and` to `or`" in item.changes[0].text


def test_reordering_a_rule_is_not_a_change_in_what_it_tests(seed):
    item = _changes(
        diff(seed, _amend(seed, {"IN-05": {"rule": "follow_up_compliance and informed_consent_signed"}})), "IN-05"
    )
    assert [c.kind for c in item.changes] == ["rule"]
    assert item.changes[0].text == "rule rewritten without changing what it tests"


def test_kind_cohort_text_and_notes_changes(seed):
    amended = _amend(
        seed,
        {
            "EX-12": {
                "kind": "inclusion",
                "cohorts": ["SLE", "SSc"],
                "text": "women who are pregnant or intend to become pregnant, or lactating;",
                "notes": "Lactation added by amendment 1.",
            }
        },
    )
    item = _changes(diff(seed, amended), "EX-12")
    kinds = {c.kind: c for c in item.changes}
    assert kinds["kind"].text == "kind changed: exclusion → inclusion"
    assert kinds["cohorts"].text == "cohorts changed: all cohorts → SLE, SSc (added SLE, SSc)"
    assert kinds["text"].before == [
        {"op": "equal", "text": "women who are pregnant or intend to become"},
        {"op": "delete", "text": "pregnant;"},
        {"op": "insert", "text": "pregnant, or lactating;"},
    ]
    assert kinds["notes"].before[-1] == {"op": "insert", "text": "Lactation added by amendment 1."}


def test_added_and_removed_criteria(seed):
    new = {"code": "EX-14", "kind": "exclusion", "text": "lactating", "rule": "breastfeeding"}
    result = diff(seed, _amend(seed, drop=("EX-13",), add=(new,)))
    assert [(i.key, i.status) for i in result.criteria] == [("EX-13", "removed"), ("EX-14", "added")]
    assert result.criteria[1].after["rule"] == "breastfeeding"


def test_dictionary_and_cohort_changes(seed):
    amended = _amend(
        seed,
        variables={
            "weight": {"maximum": 350},
            "hgb": {"units": ["g/dL", "mmol/L"], "molar_mass": "16000 g/mol"},
            "sex": {"codes": ["female", "male", "intersex"]},
            "crcl": {"unit": "mL/s"},
        },
        cohorts={"ITP": {"label": "Immune thrombocytopenia"}},
    )
    result = diff(seed, amended)
    texts = {i.key: [c.text for c in i.changes] for i in result.variables}
    assert texts["weight"] == ["plausible maximum: 400 → 350"]
    assert texts["hgb"] == ["accepted units: added mmol/L", "molar_mass: none → 16000 g/mol"]
    assert texts["sex"] == ["codes: added intersex"]
    assert texts["crcl"] == ["unit: mL/min → mL/s"]
    (cohort,) = result.cohorts
    assert (cohort.key, cohort.changes[0].text) == (
        "ITP",
        "label: Relapsed refractory/progressive immune thrombocytopenia → Immune thrombocytopenia",
    )


def test_a_draft_rule_that_does_not_parse_is_compared_as_text():
    (change,) = rule_changes("anc >= 1 x10^9/L", "anc >= (", {})
    assert (change.kind, change.before, change.after) == ("rule", "anc >= 1 x10^9/L", "anc >= (")
