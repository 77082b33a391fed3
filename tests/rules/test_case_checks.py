"""A protocol's test cases read once: checked against the protocol before they are stored, run all at once."""

from __future__ import annotations

from dataclasses import replace

import pytest

import rules
from rules import protocol, test_cases


@pytest.fixture(scope="module")
def eligible(seed) -> protocol.TestCaseDef:
    return next(c for c in seed.test_cases if c.expect == "eligible")


def test_every_shipped_protocols_test_cases_check_and_pass():
    from importlib.resources import files

    paths = [files("rules") / "protocols" / "NCT07193667.yaml", *(files("rules") / "protocols" / "examples").iterdir()]
    for path in (p for p in paths if p.name.endswith(".yaml")):
        definition = rules.load_protocol(path)
        compiled = rules.compile_protocol(definition)
        assert [p for c in definition.test_cases for p in test_cases.check(compiled, c)] == [], path.name
        runs = test_cases.run(compiled, definition.test_cases)
        assert [r.name for r in runs] == [c.name for c in definition.test_cases]
        assert all(r.passed for r in runs), path.name


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"subject": {"anc": "lots"}}, "anc", "a number"),
        ({"subject": {"age": 300}}, "age", "a plausible value"),
        ({"subject": {"ancc": 1}}, "ancc", "did you mean `anc`?"),
        ({"outcomes": {"IN-99": "pass"}}, "outcome IN-99", "a criterion code"),
        ({"outcomes": {"IN-01": "maybe"}}, "outcome IN-01", "one of pass, fail, unknown, not_applicable"),
        ({"expect": "fine"}, "expect", "one of eligible"),
        ({"missing": ("weight_kg",)}, "missing", "a variable of the data dictionary"),
        ({"expect": "refused", "refused": ("nothing_here",)}, "refused", "a variable of the data dictionary"),
    ],
)
def test_a_case_that_can_never_be_checked_names_its_field(compiled, eligible, changes, field, expected):
    subject = {**eligible.subject, **changes.pop("subject", {})}
    problems = test_cases.check(compiled, replace(eligible, subject=subject, **changes))
    assert [p.field for p in problems] == [field]
    assert expected in problems[0].expected


def test_a_case_expecting_refusal_may_hold_bad_input(compiled, eligible):
    case = replace(eligible, subject={**eligible.subject, "anc": "lots"}, expect="refused", refused=("anc",))
    assert test_cases.check(compiled, case) == []
    unknown = replace(case, subject={**eligible.subject, "weight_lbs": 150}, refused=("weight_lbs",))
    assert test_cases.check(compiled, unknown) == []
    (run,) = test_cases.run(compiled, [case])
    assert run.passed and run.rows() == [("refused", ["anc"], ["anc"], True)]


def test_a_failing_run_shows_each_check_with_what_came(compiled, eligible):
    case = replace(eligible, expect="not_eligible", outcomes={"IN-01": "fail", "IN-03b": "pass"})
    (run,) = test_cases.run(compiled, [case])
    assert not run.passed
    assert run.rows() == [
        ("decision", "not_eligible", "eligible", False),
        ("outcome IN-01", "fail", "pass", False),
        ("outcome IN-03b", "pass", "pass", True),
    ]
