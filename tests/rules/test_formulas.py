"""Derived values a writer defines: arithmetic formulas, units, built-in clinical equations, dates."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from rules.compiler import compile_protocol
from rules.dictionary import DataDictionary
from rules.errors import ProtocolError, RuleErrors
from rules.formula_check import check_formula
from rules.protocol import from_dict

VARIABLES: dict[str, dict[str, Any]] = {
    "weight": {"type": "number", "unit": "kg", "units": ["g", "lb"]},
    "height": {"type": "number", "unit": "cm", "units": ["m"]},
    "creatinine": {"type": "number", "unit": "µmol/L", "units": ["mg/dL"], "molar_mass": "113.12 g/mol"},
    "age": {"type": "number", "unit": "years"},
    "sex": {"type": "code", "codes": ["female", "male"]},
    "black": {"type": "boolean"},
    "smoker": {"type": "boolean"},
    "qt": {"type": "number", "unit": "ms"},
    "rr": {"type": "number", "unit": "s", "units": ["ms"]},
    "heart_rate": {"type": "number", "unit": "/min"},
    "calcium": {"type": "number", "unit": "mg/dL"},
    "albumin": {"type": "number", "unit": "g/L", "units": ["g/dL"]},
    "cigarettes_per_day": {"type": "number"},
    "years_smoked": {"type": "number", "unit": "years"},
    "fev1": {"type": "number", "unit": "L"},
    "fvc": {"type": "number", "unit": "L", "units": ["mL"]},
    "hba1c": {"type": "number", "unit": "%"},
    "hba1c_baseline": {"type": "number", "unit": "%"},
    "half_life": {"type": "number", "unit": "hours", "units": ["days"]},
    "date_of_birth": {"type": "date"},
    "a": {"type": "number"},
    "b": {"type": "number"},
    "c": {"type": "number"},
}
MG_DL = 10_000 / 113.12  # µmol/L in 1 mg/dL of creatinine (molar mass 113.12 g/mol)
_EGFR = "mL/min/1.73m^2"
BASE = {
    "protocol": "F",
    "title": "formulas",
    "version": "1",
    "cohorts": [{"code": "A", "label": "A"}],
    "criteria": [],
}


def _protocol(formula: str, unit: str | None = None, criteria: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    derived: dict[str, Any] = {"name": "result", "type": "number", "formula": formula}
    if unit:
        derived["unit"] = unit
    variables = [{"name": name, **spec} for name, spec in VARIABLES.items()]
    return {**BASE, "variables": [*variables, derived], "criteria": criteria or []}


def _dictionary(formula: str, unit: str | None = None) -> DataDictionary:
    return DataDictionary(from_dict(_protocol(formula, unit)))


def derive(formula: str, unit: str | None = None, **values: Any) -> float | None:
    """The derived value from canonical values (dates as ISO strings)."""
    dictionary = _dictionary(formula, unit)
    canonical = {
        k: dt.date.fromisoformat(v).toordinal() if isinstance(v, str) and "-" in v else v for k, v in values.items()
    }
    return dictionary.derive(dictionary["result"], canonical)


def problems(formula: str, unit: str | None = None) -> list[Any]:
    definitions = {v.name: v for v in from_dict(_protocol(formula, unit)).variables}
    with pytest.raises(RuleErrors) as caught:
        check_formula("result", formula, definitions)
    return caught.value.errors


# -- built-ins against published worked examples ------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "unit", "values", "expected", "tolerance"),
    [
        # CDC, "About Adult BMI" (cdc.gov/bmi): weight 68 kg, height 165 cm -> 68 / 1.65² = 24.98.
        ("bmi(weight, height)", "kg/m^2", {"weight": 68, "height": 165}, 24.98, 0.005),
        # calculatorlib.com/bsa-mosteller-calculator, worked example: 180 cm, 80 kg -> √4 = 2.00 m².
        ("bsa_mosteller(weight, height)", "m^2", {"weight": 80, "height": 180}, 2.00, 1e-9),
        # omnicalc "Body Surface Area (Mosteller)", worked example: 175 cm, 70 kg -> √3.4028 = 1.845 m².
        ("bsa_mosteller(weight, height)", "m^2", {"weight": 70, "height": 175}, 1.845, 0.0005),
        # theprimecalculator.com "Corrected Calcium" worked example: Ca 8.5 mg/dL, albumin 3.0 g/dL -> 9.3 mg/dL
        # (Payne RB et al., BMJ 1973;4:643). Albumin is stored in g/L here: 30 g/L reaches the formula as 3.0 g/dL.
        ("corrected_calcium(calcium, albumin)", "mg/dL", {"calcium": 8.5, "albumin": 30}, 9.3, 1e-9),
        # NCI Dictionary of Cancer Terms, "pack year": 20 cigarettes (1 pack) a day for 1 year is 1 pack-year,
        # and so are 40 cigarettes a day for half a year.
        ("pack_years(cigarettes_per_day, years_smoked)", None, {"cigarettes_per_day": 20, "years_smoked": 1}, 1, 0),
        ("pack_years(cigarettes_per_day, years_smoked)", None, {"cigarettes_per_day": 40, "years_smoked": 0.5}, 1, 0),
        # Bazett and Fridericia (Cambio CDS "QTc_Calculation": QTc = QT / RR^0.5, QT / RR^(1/3), RR = 60 / HR):
        # at 60 /min, RR = 1.0 s and QTc = QT; at 75 /min (RR 0.8 s) QT 400 ms -> QTcB 447.2, QTcF 430.9 ms.
        ("qtcb(qt, rr)", "ms", {"qt": 400, "rr": 1.0}, 400, 1e-9),
        ("qtcf(qt, rr)", "ms", {"qt": 400, "rr": 1.0}, 400, 1e-9),
        ("qtcb(qt, rr)", "ms", {"qt": 400, "rr": 0.8}, 447.2, 0.05),
        ("qtcf(qt, rr)", "ms", {"qt": 400, "rr": 0.8}, 430.9, 0.05),
        ("qtcf(qt, 1 / heart_rate)", "ms", {"qt": 400, "heart_rate": 75}, 430.9, 0.05),
        # CKD-EPI 2021 (Inker LA et al., NEJM 2021;385:1737; coefficients as NIDDK publishes them): at
        # Scr = κ both min and max terms are 1, so a woman of 40 with 0.7 mg/dL has 142 x 0.9938^40 x 1.012.
        (
            "ckd_epi_2021(creatinine, age, sex)",
            "mL/min/1.73m^2",
            {"creatinine": 61.88, "age": 40, "sex": "female"},
            142 * 0.9938**40 * 1.012,
            0.01,
        ),
        # ... and a man of 55 with 1.2 mg/dL: 142 x (1.2/0.9)^-1.200 x 0.9938^55 = 71.4 (step by step from the
        # published equation; 1.2 mg/dL is 106.08 µmol/L).
        (
            "ckd_epi_2021(creatinine, age, sex)",
            "mL/min/1.73m^2",
            {"creatinine": 106.08, "age": 55, "sex": "male"},
            71.4,
            0.05,
        ),
        # JMLuther/tabletools, calculate_egfr_ckdepi() examples, checked there against the NKF's CKD-EPI 2021
        # calculator (kidney.org/professionals/kdoqi/gfr_calculator): 70 years, 0.8 mg/dL -> 95.2 (man), 79.2
        # (woman); 50 years, 1.0 mg/dL -> 92 (man).
        (
            "ckd_epi_2021(creatinine, age, sex)",
            _EGFR,
            {"creatinine": 0.8 * MG_DL, "age": 70, "sex": "male"},
            95.2,
            0.05,
        ),
        (
            "ckd_epi_2021(creatinine, age, sex)",
            _EGFR,
            {"creatinine": 0.8 * MG_DL, "age": 70, "sex": "female"},
            79.2,
            0.05,
        ),
        ("ckd_epi_2021(creatinine, age, sex)", _EGFR, {"creatinine": 1.0 * MG_DL, "age": 50, "sex": "male"}, 92, 0.5),
        # JMLuther/tabletools, calculate_egfr_mdrd() examples (IDMS 175 equation): a man of 50 with 1.0 mg/dL -> 79,
        # with 2.0 mg/dL -> 35.5.
        ("mdrd(creatinine, age, sex)", _EGFR, {"creatinine": 1.0 * MG_DL, "age": 50, "sex": "male"}, 79, 0.5),
        (
            "mdrd(creatinine, age, sex, black)",
            _EGFR,
            {"creatinine": 2.0 * MG_DL, "age": 50, "sex": "male", "black": False},
            35.5,
            0.05,
        ),
        # MDRD, IDMS-traceable (Levey AS et al., Ann Intern Med 2006;145:247): 175 x 1.0^-1.154 x 60^-0.203
        # x 0.742 (female) x 1.212 (Black) = 68.5 for a Black woman of 60 with 1.0 mg/dL (88.4 µmol/L).
        (
            "mdrd(creatinine, age, sex, black)",
            "mL/min/1.73m^2",
            {"creatinine": 88.4, "age": 60, "sex": "female", "black": True},
            68.5,
            0.05,
        ),
        (
            "mdrd(creatinine, age, sex)",
            "mL/min/1.73m^2",
            {"creatinine": 88.4, "age": 60, "sex": "female"},
            68.5 / 1.212,
            0.05,
        ),
        # Cockcroft DW, Gault MH, Nephron 1976;16:31: (140 - 60) x 72 kg / (72 x 1.0 mg/dL) = 80 mL/min, x 0.85 = 68.
        (
            "cockcroft_gault(age, weight, creatinine, sex)",
            "mL/min",
            {"age": 60, "weight": 72, "creatinine": 88.4, "sex": "female"},
            68,
            0.01,
        ),
    ],
)
def test_built_ins_match_published_examples(formula, unit, values, expected, tolerance):
    assert derive(formula, unit, **values) == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize(
    ("built_in", "written", "unit"),
    [
        ("bmi(weight, height)", "weight / (height in m)^2", "kg/m^2"),
        ("bsa_mosteller(weight, height)", "sqrt(height * weight / 3600)", "m^2"),
        ("corrected_calcium(calcium, albumin)", "calcium + 0.8 * (4 - albumin in g/dL)", "mg/dL"),
        (
            "ckd_epi_2021(creatinine, age, sex)",
            "142 * min(creatinine in mg/dL / (if sex is female then 0.7 else 0.9), 1)"
            " ^ (if sex is female then -0.241 else -0.302)"
            " * max(creatinine in mg/dL / (if sex is female then 0.7 else 0.9), 1) ^ -1.200"
            " * 0.9938 ^ age * (if sex is female then 1.012 else 1)",
            "mL/min/1.73m^2",
        ),
        (
            "mdrd(creatinine, age, sex, black)",
            "175 * (creatinine in mg/dL) ^ -1.154 * age ^ -0.203 * (if sex is female then 0.742 else 1)"
            " * (if black then 1.212 else 1)",
            "mL/min/1.73m^2",
        ),
        ("qtcf(qt, rr)", "qt / rr ^ (1/3)", "ms"),
        ("pack_years(cigarettes_per_day, years_smoked)", "cigarettes_per_day / 20 * years_smoked", None),
    ],
)
@pytest.mark.parametrize(
    "values",
    [
        {
            "weight": 80,
            "height": 180,
            "creatinine": 50,
            "age": 30,
            "sex": "female",
            "black": False,
            "calcium": 9,
            "albumin": 25,
            "qt": 420,
            "rr": 0.9,
            "cigarettes_per_day": 15,
            "years_smoked": 12,
        },
        {
            "weight": 55,
            "height": 160,
            "creatinine": 140,
            "age": 71,
            "sex": "male",
            "black": True,
            "calcium": 8,
            "albumin": 41,
            "qt": 380,
            "rr": 1.2,
            "cigarettes_per_day": 30,
            "years_smoked": 40,
        },
    ],
)
def test_a_writer_can_write_each_built_in_as_arithmetic(built_in, written, unit, values):
    assert derive(written, unit, **values) == pytest.approx(derive(built_in, unit, **values), rel=1e-9)


def test_a_change_between_two_results_and_a_ratio():
    assert derive("hba1c - hba1c_baseline", "%", hba1c=6.1, hba1c_baseline=7.3) == pytest.approx(-1.2)
    assert derive("(hba1c - hba1c_baseline) / hba1c_baseline * 100", None, hba1c=6.0, hba1c_baseline=7.5) == -20
    assert derive("fev1 / fvc", "%", fev1=2.8, fvc=4.0) == 70  # L/L converts to %
    assert derive("fev1 / fvc", None, fev1=2.8, fvc=4.0) == 0.7
    assert derive("fev1 / fvc * 100", "%", fev1=2.8, fvc=4.0) == 70  # a ratio scaled by 100 is a percentage


def test_the_seed_functions_keep_working():
    assert (
        derive(
            "days_between(date_of_birth, screening_date)",
            "days",
            date_of_birth="2026-10-01",
            screening_date="2026-11-01",
        )
        == 31
    )
    assert derive("times(half_life, 5)", "hours", half_life=12) == 60
    assert derive("times(half_life, 5)", "days", half_life=12) == 2.5  # `times` keeps the value's unit: converts


# -- operators and precedence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("10 - 4 - 3", 3),
        ("12 / 3 / 2", 2),
        ("2 ^ 3 ^ 2", 512),  # right-associative
        ("-2 ^ 2", -4),  # the power binds tighter than the sign
        ("2 ^ -1", 0.5),
        ("2 * -3", -6),
        ("2 × 3 ÷ 4", 1.5),
        ("7 − 2", 5),
        ("2 x 3", 6),
        ("2 ** 3", 8),
        ("+4", 4),
        ("min(3, 1, 2) + max(1, 2)", 3),
        ("sqrt(16) + abs(-2) + ln(exp(1)) + log10(100)", 9),
        ("if 1 > 2 then 1 else if 2 >= 2 and not 1 = 2 then 2 else 3", 2),
        ("1 + (if a > 0 or b > 0 then 10 else 20) * 2", 21),
    ],
)
def test_precedence(formula, expected):
    assert derive(formula, a=1, b=-1) == pytest.approx(expected)


def test_branches_on_codes_and_yes_no():
    formula = "if sex is female then 0.742 else 1"
    assert derive(formula, sex="female") == 0.742
    assert derive(formula, sex="male") == 1
    assert derive("if sex in (female, male) and not smoker then 1 else 2", sex="male", smoker=True) == 2
    assert derive("if sex is not female then 1 else 2", sex="male") == 1


# -- units ----------------------------------------------------------------------------------------


def test_variables_are_read_in_canonical_or_stated_units():
    assert derive("creatinine in mg/dL", "mg/dL", creatinine=88.4) == pytest.approx(1.0, abs=1e-4)
    assert derive("creatinine", "µmol/L", creatinine=88.4) == 88.4
    assert derive("weight", "g", weight=70) == 70_000  # an exact result converts to the declared unit
    assert derive("half_life in days * 5", "days", half_life=12) == 2.5


@pytest.mark.parametrize(
    ("formula", "unit", "message", "column"),
    [
        ("weight + creatinine", "kg", "cannot add kg and µmol/L: they measure different things", 8),
        ("weight - weight in g", "kg", "cannot subtract kg and g as they stand: read both in one unit", 8),
        ("weight in mg/dL", "kg", "`weight` is in kg, which does not convert to mg/dL", 11),
        ("creatinine in wombats", "mg/dL", "unknown unit", 15),
        ("sex + 1", None, "a code cannot be added", 1),
        ("date_of_birth * 2", None, "a date cannot be multiplied", 1),
        ("if smoker then weight else height", "kg", "cannot choose between kg and cm", 1),
        ("bmi(weight)", "kg/m^2", "bmi takes (weight, height)", 1),
        ("bmi(weight, age)", "kg/m^2", "bmi's `height` is in cm; this is in years, which does not convert", 13),
        ("cockcroft_gault(age, weight, creatinine, smoker)", "mL/min", "needs a code, this is a boolean", 42),
        ("eval(weight)", None, "unknown function `eval`", 1),
        ("wieght * 2", "kg", "unknown variable `wieght`", 1),
        ("if sex is femal then 1 else 2", None, "`sex` has no code `femal`", 4),
        ("if sex then 1 else 2", None, "`sex` is a code, not yes/no", 4),
        ("weight / (height in m)^2", "mg/dL", "the formula gives kg/m^2, which does not convert to mg/dL", 1),
        ("weight", None, "the formula gives kg; declare `result` with a unit", 1),
        ("half_life * 5", "days", "the formula computes in hours, scaled by a number", 1),
        ("qtcf(qt, 60 / heart_rate)", "ms", "qtcf's `rr` is in s; this computes in min, scaled by a number", 13),
        ("times(half_life, age)", "hours", "times's `factor` must be a number written in the formula", 18),
    ],
)
def test_unit_and_type_mistakes_are_refused_with_their_position(formula, unit, message, column):
    (error,) = problems(formula, unit)
    assert message in error.message
    assert error.position.column == column
    assert error.context().splitlines() == [formula, " " * (column - 1) + "^"]


def test_every_problem_is_reported_at_once():
    errors = problems("wieght + sex * 2 + foo(1) + creatinine in wombats", "kg")
    assert [e.position.column for e in errors] == [1, 10, 20, 43]
    assert "did you mean `weight`" in errors[0].describe()


def test_a_syntax_error_has_a_caret():
    (error,) = problems("weight * (2 +", "kg")
    assert "unclosed parenthesis" in error.message
    assert error.context().endswith("^")
    (error,) = problems("weight * 2 +", "kg")
    assert error.message.startswith("the formula ends too early: expected")
    assert problems("", "kg")[0].message == "the formula is empty"


def test_the_dictionary_lists_formula_problems_with_carets():
    with pytest.raises(ProtocolError) as caught:
        DataDictionary(from_dict(_protocol("weight + creatinine", "kg")))
    (problem,) = caught.value.problems
    assert problem.startswith("variable `result`: formula: cannot add kg and µmol/L")
    assert problem.endswith("weight + creatinine\n       ^")


# -- no value, never a crash ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "a"),
    [
        ("1 / a", 0),
        ("ln(a)", 0),
        ("ln(a)", -1),
        ("log10(a)", 0),
        ("sqrt(a)", -4),
        ("a ^ 0.5", -8),
        ("a ^ -1", 0),
        ("exp(a)", 10_000),
        ("a ^ a", 1e300),
        ("1 / (a - a)", 3),
        ("if a > 1 then 1 / (a - a) else 0", 3),
    ],
)
def test_arithmetic_without_a_value_leaves_the_derived_value_unknown(formula, a):
    assert derive(formula, a=a) is None


def test_a_missing_input_leaves_it_unknown():
    assert derive("a + b", a=1) is None


def test_an_engine_decision_with_a_formula_without_value_is_incomplete_not_a_crash():
    criterion = {"code": "C1", "kind": "inclusion", "text": "ratio", "rule": "result >= 1"}
    compiled = compile_protocol(from_dict(_protocol("1 / a", criteria=[criterion])))
    subject = {"cohort": "A", "screening_date": "2026-11-02", "a": 0}
    decision = rules.decide(compiled, subject)
    assert decision.decision == "incomplete"
    assert decision.criteria[0].outcome == "unknown"
    assert decision.derived["result"]["value"] is None
    assert (
        decision.criteria[0].condition["sentence"] == "result has no value for these inputs (e.g. a division by zero)"
    )
    assert rules.decide(compiled, {**subject, "a": 0.5}).decision == "eligible"


# -- dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "on", "years"),
    [
        ("1976-11-28", "2026-11-27", 49),
        ("1976-11-28", "2026-11-28", 50),  # 50 on the 50th birthday
        ("2000-02-29", "2001-02-28", 0),  # a 29 February birthday falls on 1 March in a common year
        ("2000-02-29", "2001-03-01", 1),
        ("2000-02-29", "2004-02-29", 4),
        ("2000-02-29", "2004-02-28", 3),
        ("2026-11-28", "2026-11-28", 0),
        ("2026-11-28", "2025-11-28", -1),
    ],
)
def test_age_in_completed_years(born, on, years):
    assert (
        derive("completed_years(date_of_birth, screening_date)", "years", date_of_birth=born, screening_date=on)
        == years
    )
    assert derive("age(date_of_birth)", "years", date_of_birth=born, screening_date=on) == years
    assert derive("age(date_of_birth, screening)", "years", date_of_birth=born, screening_date=on) == years


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        ("2026-01-15", "2026-02-14", 0),
        ("2026-01-15", "2026-02-15", 1),
        ("2024-01-31", "2024-02-29", 0),  # no 31 February: the month completes on 1 March
        ("2024-01-31", "2024-03-01", 1),
        ("2024-03-31", "2024-04-30", 0),
        ("2023-11-30", "2026-11-30", 36),
        ("2026-03-01", "2026-01-31", -1),
    ],
)
def test_durations_in_completed_months(start, end, months):
    formula = "completed_months(date_of_birth, screening_date)"
    assert derive(formula, "months", date_of_birth=start, screening_date=end) == months


def test_dates_subtract_to_days_and_compare():
    assert (
        derive("screening_date - date_of_birth", "days", date_of_birth="2026-01-01", screening_date="2026-03-01") == 59
    )
    assert (
        derive(
            "completed_days(date_of_birth, screening_date)",
            "days",
            date_of_birth="2026-01-01",
            screening_date="2026-03-01",
        )
        == 59
    )
    assert (
        derive(
            "if date_of_birth < screening_date then 1 else 0", date_of_birth="2026-01-01", screening_date="2026-03-01"
        )
        == 1
    )


# -- when the engine derives it, and what the explanation shows ----------------------------------------


def test_inputs_are_every_variable_a_formula_may_read():
    dictionary = _dictionary("if smoker then pack_years(cigarettes_per_day, years_smoked) else 0")
    derivation = dictionary["result"].derivation
    assert derivation.inputs == ("cigarettes_per_day", "smoker", "years_smoked")
    assert _dictionary("age(date_of_birth)", "years")["result"].derivation.inputs == (
        "date_of_birth",
        "screening_date",
    )


def test_the_engine_derives_once_the_inputs_exist_and_the_explanation_shows_them():
    criterion = {"code": "C1", "kind": "inclusion", "text": "BMI below 30", "rule": "result < 30 kg/m^2"}
    compiled = compile_protocol(from_dict(_protocol("weight / (height in m)^2", "kg/m^2", [criterion])))
    assert compiled.ruleset["derive:result"]["all"][0]["m"]["$and"][-2:] == [
        {"$ex": {"height": 1}},
        {"$ex": {"weight": 1}},
    ]
    subject = {"cohort": "A", "screening_date": "2026-11-02", "weight": {"value": 154, "unit": "lb"}, "height": 175}
    decision = rules.decide(compiled, subject)
    assert decision.decision == "eligible"
    assert "derive:result" in decision.rules_fired
    entry = decision.derived["result"]
    assert entry["formula"] == "weight / (height in m)^2"
    assert entry["value"] == pytest.approx(22.81, abs=0.005)
    assert entry["inputs"]["height"] == {"value": 175, "unit": "cm", "shown": "175 cm"}
    assert entry["inputs"]["weight"]["submitted"] == {"value": 154, "unit": "lb"}
    assert entry["sentence"].startswith("result = weight / (height in m)^2 = 22.8")
    missing = rules.decide(compiled, {k: v for k, v in subject.items() if k != "height"})
    assert missing.decision == "incomplete" and missing.missing == ["height"]
    assert "result" not in missing.derived


# -- the interpreter agrees with Python ----------------------------------------------------------------

_LEAVES = st.one_of(
    st.sampled_from(["a", "b", "c"]).map(lambda name: ("variable", name)),
    st.floats(min_value=0, max_value=50, allow_nan=False).map(lambda x: ("number", round(x, 3))),
)


def _branches(children: st.SearchStrategy[tuple]) -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.just("binary"), st.sampled_from(["+", "-", "*", "/"]), children, children),
        st.tuples(st.just("power"), children, st.integers(-3, 3)),
        st.tuples(st.just("call"), st.sampled_from(["min", "max"]), children, children),
        st.tuples(st.just("unary"), st.sampled_from(["-", "abs", "sqrt", "ln", "exp"]), children),
        st.tuples(st.just("if"), children, children, children),
    )


_TREES = st.recursive(_LEAVES, _branches, max_leaves=12)
_FUNCTIONS = {"abs": abs, "sqrt": math.sqrt, "ln": math.log, "exp": math.exp, "min": min, "max": max}
_BINARY = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y, "/": lambda x, y: x / y}


def _text(tree: tuple) -> str:
    """The formula a writer would type for a tree, parenthesised where precedence needs it."""
    kind = tree[0]
    if kind == "variable":
        return tree[1]
    if kind == "number":
        return f"{tree[1]:g}"
    if kind == "binary":
        return f"({_text(tree[2])} {tree[1]} {_text(tree[3])})"
    if kind == "power":
        return f"({_text(tree[1])}) ^ {tree[2]}"
    if kind == "call":
        return f"{tree[1]}({_text(tree[2])}, {_text(tree[3])})"
    if kind == "unary":
        return f"-({_text(tree[2])})" if tree[1] == "-" else f"{tree[1]}({_text(tree[2])})"
    return f"(if {_text(tree[1])} > 0 then {_text(tree[2])} else {_text(tree[3])})"


def _python(tree: tuple, values: dict[str, float]) -> float:
    """The same tree computed by Python directly; raises where the arithmetic has no value."""
    kind = tree[0]
    if kind == "variable":
        return values[tree[1]]
    if kind == "number":
        return tree[1]
    if kind == "if":
        return _python(tree[2], values) if _python(tree[1], values) > 0 else _python(tree[3], values)
    if kind == "binary":
        result = _BINARY[tree[1]](_python(tree[2], values), _python(tree[3], values))
    elif kind == "power":
        result = math.pow(_python(tree[1], values), tree[2])
    elif kind == "call":
        result = _FUNCTIONS[tree[1]](_python(tree[2], values), _python(tree[3], values))
    else:
        operand = _python(tree[2], values)
        result = -operand if tree[1] == "-" else _FUNCTIONS[tree[1]](operand)
    if not math.isfinite(result):
        raise OverflowError
    return result


@settings(max_examples=200, deadline=None)
@given(tree=_TREES, a=st.floats(-20, 20, allow_nan=False), b=st.floats(-20, 20, allow_nan=False), c=st.integers(-3, 3))
def test_the_interpreter_agrees_with_python(tree, a, b, c):
    values = {"a": a, "b": b, "c": float(c)}
    try:
        expected: float | None = _python(tree, values)
    except (ArithmeticError, ValueError):
        expected = None
    got = derive(_text(tree), **values)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


_TOKENS = [
    *VARIABLES,
    "screening",
    "1",
    "0",
    "2.5",
    "+",
    "-",
    "*",
    "/",
    "^",
    "x",
    "(",
    ")",
    ",",
    "in",
    "mg/dL",
    "kg",
    "if",
    "then",
    "else",
    "is",
    "not",
    "and",
    "or",
    "female",
    ">",
    "=",
    "min",
    "max",
    "ln",
    "sqrt",
    "bmi",
    "age",
    "times",
    "completed_years",
    "qtcf",
    "@",
    "",
]


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=14), value=st.floats(-1e6, 1e6))
def test_any_formula_text_is_refused_in_words_or_computes(words, value):
    """Whatever a writer types: a ProtocolError naming the variable, or a formula that gives a number or nothing."""
    text = " ".join(words)
    if not text.strip():
        return  # an empty formula is no formula: a variable submitted as is
    try:
        dictionary = _dictionary(text, None)
    except ProtocolError as error:
        assert all(p.startswith("variable `result`: formula: ") for p in error.problems)
        return
    values = {name: value if spec["type"] == "number" else None for name, spec in VARIABLES.items()}
    values.update(sex="female", black=False, smoker=True, date_of_birth=720000, screening_date=730000)
    result = dictionary.derive(dictionary["result"], values)
    assert result is None or math.isfinite(result)


@pytest.mark.parametrize(
    "text", ["-" * 1000 + "a", "2 ^ " * 450 + "1", "-" * 150 + "a", "-" * 400 + "a", "a" + " + a" * 450]
)
def test_a_formula_nested_too_deeply_is_refused_not_a_crash(text):
    with pytest.raises(ProtocolError, match="nests"):
        _dictionary(text)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_closure_agrees_with_walking_the_tree(data):
    """Formulas run as closures built once; the tree's own `run` is the reference they must match."""
    from rules import expression

    names = ["a", "b", "c"]
    leaf = st.one_of(
        st.builds(expression.Constant, st.floats(-50, 50, allow_nan=False)),
        st.builds(expression.Read, st.sampled_from(names), st.sampled_from([1.0, 2.5])),
    )
    tree = st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(expression.Apply, st.sampled_from(["+", "-", "*", "/", "min", "max"]), st.tuples(inner, inner)),
            st.builds(expression.Apply, st.sampled_from(["abs", "neg", "exp"]), st.tuples(inner)),
            st.builds(
                expression.Branch,
                st.builds(expression.Compare, st.sampled_from([">=", "<"]), inner, inner),
                inner,
                inner,
            ),
        ),
        max_leaves=12,
    )
    expr = data.draw(tree)
    values = data.draw(st.dictionaries(st.sampled_from(names), st.floats(-100, 100, allow_nan=False)))
    try:
        walked = expr.run(values)
    except (expression.Undefined, ArithmeticError, ValueError) as error:
        walked = type(error)
    try:
        closed = expression.closure(expr)(values)
    except (expression.Undefined, ArithmeticError, ValueError) as error:
        closed = type(error)
    assert closed == walked or (isinstance(walked, float) and isinstance(closed, float) and closed != closed)
