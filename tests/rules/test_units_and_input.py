"""Units and subject data: conversions, exact boundaries, and clear errors for bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rules
from rules import units
from rules.errors import SubjectInputErrors


@pytest.mark.parametrize(
    ("source", "target", "molar_mass", "factor"),
    [
        ("/µL", "x10^9/L", None, 0.001),
        ("cells/mm3", "x10^9/L", None, 0.001),
        ("×10⁹/L", "/µL", None, 1000.0),
        ("g/dL", "g/L", None, 10.0),
        ("mg/dL", "µmol/L", "113.12 g/mol", 88.4016973126),
        ("mg/dL", "µmol/L", "584.66 g/mol", 17.1039578558),
        ("µkat/L", "U/L", None, 60.0),
        ("lb", "kg", None, 0.45359237),
        ("weeks", "days", None, 7.0),
        ("%", "%", None, 1.0),
    ],
)
def test_factors(source, target, molar_mass, factor):
    assert units.factor(source, target, molar_mass) == pytest.approx(factor, rel=1e-10)


def test_units_that_do_not_convert_are_refused():
    with pytest.raises(units.UnitError, match="does not convert"):
        units.factor("mg/dL", "µmol/L")
    with pytest.raises(units.UnitError, match="unknown unit"):
        units.factor("wombats/fortnight", "kg")


LAB_UNITS = ["/µL", "x10^9/L", "cells/mm3", "g/L", "g/dL", "mg/dL", "U/L", "µkat/L", "kg", "lb", "days", "weeks"]


@given(st.sampled_from(LAB_UNITS), st.sampled_from(LAB_UNITS))
def test_conversion_round_trips(source, target):
    if units.converts(source, target):
        assert units.factor(source, target) * units.factor(target, source) == pytest.approx(1.0, rel=1e-9)


@given(st.integers(min_value=0, max_value=10**6))
def test_counts_convert_without_float_noise(count):
    assert units.tidy(count * units.factor("/µL", "x10^9/L")) == count / 1000


def test_values_are_normalised(compiled, subject):
    normalized = compiled.dictionary.normalize(
        subject("SLE", {"anc": "800 /µL", "weight": {"value": 154, "unit": "lb"}, "cd19_positive": "Yes"})
    )
    assert normalized.values["anc"] == 0.8
    assert normalized.values["weight"] == pytest.approx(69.853225)
    assert normalized.values["cd19_positive"] is True
    assert normalized.values["screening_date"] == dt.date(2026, 11, 2).toordinal()
    assert normalized.submitted["anc"] == (800.0, "/µL")


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"anx": 1}, "anx", "did you mean `anc`"),
        ({"anc": "lots"}, "anc", "a number in x10^9/L"),
        ({"anc": True}, "anc", "a number"),
        ({"anc": float("nan")}, "anc", "a number"),
        ({"anc": {"value": 1, "unit": "mg/dL"}}, "anc.unit", "one of x10^9/L, 10^9/L, /µL"),
        ({"anc": {"value": 1, "units": "/µL"}}, "anc", "{value, unit}"),
        ({"anc": 900}, "anc", "a plausible value between 0 and 300 x10^9/L"),
        ({"hgb": {"value": 30, "unit": "g/dL"}}, "hgb", "between 10 and 250 g/L"),
        ({"cd19_positive": "maybe"}, "cd19_positive", "true or false"),
        ({"sex": "unknown"}, "sex", "one of female, male"),
        ({"serum_hcg_date": "30/10/2026"}, "serum_hcg_date", "YYYY-MM-DD"),
        ({"crcl": 80}, "crcl", "derived from age, creatinine, sex, weight"),
        ({"cohort": None}, "cohort", "one of SLE, SSc, IIM, ITP"),
        ({"screening_date": None}, "screening_date", "a date"),
    ],
)
def test_bad_input_names_field_value_and_expectation(compiled, subject, changes, field, expected):
    with pytest.raises(SubjectInputErrors) as caught:
        rules.decide(compiled, subject("SLE", changes))
    (error,) = caught.value.errors
    assert error.field == field
    assert expected in error.expected


def test_all_bad_fields_are_reported_together(compiled, subject):
    with pytest.raises(SubjectInputErrors) as caught:
        rules.decide(compiled, subject("SLE", {"anc": "lots", "hgb": -1, "sex": "x"}))
    assert sorted(e.field for e in caught.value.errors) == ["anc", "hgb", "sex"]


def test_empty_values_count_as_missing(compiled, subject):
    decision = rules.decide(compiled, subject("SLE", {"anc": "", "wbc": None}))
    assert decision.outcome("IN-03b") == "unknown"
    assert "anc" in decision.missing
