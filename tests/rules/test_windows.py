"""Date windows as protocols write them: inclusive and exclusive ends, "at least N before", after a date,
hours as whole days, a date against another date, and look-back dates never after the screening date."""

from __future__ import annotations

import datetime as dt

import pytest

import rules
from rules.compiler import compile_protocol
from rules.errors import RuleErrors
from rules.protocol import from_dict

SCREENING = dt.date(2026, 11, 2)


def compiled_rule(rule: str, kind: str = "inclusion"):
    return compile_protocol(
        from_dict(
            {
                "protocol": "W",
                "title": "windows",
                "version": "1",
                "variables": [
                    {"name": "dose_date", "type": "date"},
                    {"name": "diagnosis_date", "type": "date"},
                ],
                "criteria": [{"code": "C", "kind": kind, "text": rule, "rule": rule}],
            }
        )
    )


def outcome(rule: str, days_before: int | None, **extra) -> str:
    subject = {"screening_date": SCREENING.isoformat(), **extra}
    if days_before is not None:
        subject["dose_date"] = (SCREENING - dt.timedelta(days=days_before)).isoformat()
    compiled = compiled_rule(rule)
    decided = rules.decide(compiled, subject)
    assert decided.outcomes() == rules.decide_reference(compiled, subject).outcomes()
    return decided.outcome("C")


@pytest.mark.parametrize(
    ("rule", "days_before", "expected"),
    [
        ("dose_date within 14 days before screening", 14, "pass"),  # both ends inclusive
        ("dose_date within 14 days before screening", 0, "pass"),
        ("dose_date within 14 days before screening", 15, "fail"),
        ("dose_date at least 14 days before screening", 14, "pass"),  # the washout is complete on day 14
        ("dose_date at least 14 days before screening", 13, "fail"),
        ("dose_date more than 14 days before screening", 14, "fail"),  # strictly more
        ("dose_date more than 14 days before screening", 15, "pass"),
        ("dose_date less than 14 days before screening", 14, "fail"),
        ("dose_date less than 14 days before screening", 13, "pass"),
        ("dose_date within 72 hours before screening", 3, "pass"),
        ("dose_date within 72 hours before screening", 4, "fail"),
        ("dose_date at least 3 months before screening", 92, "pass"),  # 2 Aug is 3 months before 2 Nov
        ("dose_date at least 3 months before screening", 91, "fail"),
        ("dose_date at least 3 months before screening", None, "unknown"),
    ],
)
def test_window_ends(rule, days_before, expected):
    assert outcome(rule, days_before) == expected


@pytest.mark.parametrize(
    ("rule", "dose_after_diagnosis", "expected"),
    [
        ("dose_date within 28 days after diagnosis_date", 28, "pass"),
        ("dose_date within 28 days after diagnosis_date", 29, "fail"),
        ("dose_date within 28 days after diagnosis_date", -1, "fail"),
        ("dose_date at least 28 days after diagnosis_date", 28, "pass"),
        ("dose_date more than 28 days after diagnosis_date", 28, "fail"),
        ("dose_date less than 28 days after diagnosis_date", 27, "pass"),
        ("dose_date > diagnosis_date", 1, "pass"),
        ("dose_date > diagnosis_date", 0, "fail"),
        ("dose_date <= diagnosis_date", 0, "pass"),
    ],
)
def test_windows_after_another_date_and_date_comparisons(rule, dose_after_diagnosis, expected):
    diagnosis = SCREENING - dt.timedelta(days=200)
    dose = diagnosis + dt.timedelta(days=dose_after_diagnosis)
    subject = {
        "screening_date": SCREENING.isoformat(),
        "diagnosis_date": diagnosis.isoformat(),
        "dose_date": dose.isoformat(),
    }
    compiled = compiled_rule(rule)
    assert rules.decide(compiled, subject).outcome("C") == expected
    assert rules.decide_reference(compiled, subject).outcome("C") == expected


def test_hours_must_be_whole_days():
    with pytest.raises(RuleErrors, match="dates carry no time of day"):
        compiled_rule("dose_date within 36 hours before screening")


def test_a_look_back_date_after_screening_is_refused_naming_the_field():
    compiled = compiled_rule("dose_date at least 14 days before screening", "exclusion")
    future = (SCREENING + dt.timedelta(days=3)).isoformat()
    with pytest.raises(rules.SubjectInputErrors) as refused:
        rules.decide(compiled, {"screening_date": SCREENING.isoformat(), "dose_date": future})
    (error,) = refused.value.errors
    assert error.field == "dose_date" and "on or before the screening date 2026-11-02" in error.expected


def test_a_date_only_compared_with_another_date_may_follow_screening():
    compiled = compiled_rule("dose_date within 28 days after diagnosis_date")
    later = (SCREENING + dt.timedelta(days=3)).isoformat()
    subject = {"screening_date": SCREENING.isoformat(), "diagnosis_date": SCREENING.isoformat(), "dose_date": later}
    assert rules.decide(compiled, subject).outcome("C") == "pass"


def test_the_window_sentence_names_the_relation():
    compiled = compiled_rule("dose_date at least 14 days before screening")
    subject = {"screening_date": SCREENING.isoformat(), "dose_date": "2026-10-01"}
    sentence = rules.decide(compiled, subject).criteria[0].sentence
    assert sentence == "dose_date 2026-10-01 is at least 14 days before screening (2026-11-02)"


@pytest.mark.parametrize(
    "formula",
    ["age(date_of_birth)", "completed_years(date_of_birth, screening_date)", "screening_date - date_of_birth"],
)
def test_a_date_a_formula_counts_back_from_screening_is_never_after_it(formula):
    """A birth date typed a year late made a subject 0 years old and eligible under an age limit."""
    compiled = compile_protocol(
        from_dict(
            {
                "protocol": "DOB",
                "title": "t",
                "version": "1",
                "variables": [
                    {"name": "date_of_birth", "type": "date"},
                    {
                        "name": "age",
                        "type": "number",
                        "unit": "days" if "-" in formula else "years",
                        "formula": formula,
                    },
                ],
                "criteria": [{"code": "YOUNG", "kind": "inclusion", "text": "young", "rule": "age >= 0 years"}],
            }
        )
    )
    with pytest.raises(rules.SubjectInputErrors) as refused:
        rules.decide(compiled, {"screening_date": "2026-11-02", "date_of_birth": "2027-06-01"})
    assert [e.field for e in refused.value.errors] == ["date_of_birth"]
    assert (
        rules.decide(compiled, {"screening_date": "2026-11-02", "date_of_birth": "1990-06-01"}).decision == "eligible"
    )
