"""Clinical units: temperatures, HbA1c's master equation, UCUM spellings, refused pairs, LLN, bounded labels."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rules
from rules import ast, units
from rules.checker import check_rule
from rules.compiler import CompiledProtocol
from rules.dictionary import DataDictionary
from rules.diff import rule_changes
from rules.errors import ProtocolError, RuleErrors, SubjectInputErrors
from rules.parser import parse_rule
from rules.protocol import dumps, from_dict, loads


def protocol(variables: list[dict[str, Any]], criteria: dict[str, str]) -> dict[str, Any]:
    return {
        "protocol": "P-UNITS",
        "title": "units",
        "version": "1",
        "cohorts": [{"code": "A", "label": "A"}],
        "variables": variables,
        "criteria": [
            {"code": code, "kind": "inclusion", "text": code, "rule": rule} for code, rule in criteria.items()
        ],
    }


def subject(**inputs: Any) -> dict[str, Any]:
    return {"cohort": "A", "screening_date": "2026-11-02", **inputs}


TEMPERATURE_C = {"name": "temp", "type": "number", "unit": "°C", "units": ["°F", "K"], "minimum": 25, "maximum": 45}
TEMPERATURE_F = {"name": "temp", "type": "number", "unit": "°F", "units": ["°C"], "minimum": 77, "maximum": 113}
HBA1C = {"name": "hba1c", "type": "number", "unit": "%", "units": ["mmol/mol"], "conversion": "hba1c"}
HGB = {"name": "hgb", "type": "number", "unit": "g/L", "units": ["g/dL"], "lln": True, "uln": True}


@pytest.fixture(scope="module")
def fever_in_celsius() -> CompiledProtocol:
    return rules.compile_protocol(from_dict(protocol([TEMPERATURE_C], {"FEVER": "temp >= 38 °C"})))


@pytest.fixture(scope="module")
def fever_in_fahrenheit() -> CompiledProtocol:
    return rules.compile_protocol(from_dict(protocol([TEMPERATURE_F], {"FEVER": "temp >= 38 °C"})))


@pytest.fixture(scope="module")
def diabetes() -> CompiledProtocol:
    return rules.compile_protocol(from_dict(protocol([HBA1C], {"HBA1C": "hba1c between 7 and 10.5 %"})))


@pytest.fixture(scope="module")
def anaemia() -> CompiledProtocol:
    return rules.compile_protocol(
        from_dict(
            protocol([HGB], {"HGB-LOW": "hgb >= 1 x LLN", "HGB-HIGH": "hgb <= 1.2 x ULN", "HGB-BARE": "hgb >= LLN"})
        )
    )


# -- conversions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "value", "expected"),
    [
        ("°C", "°F", 38, 100.4),
        ("°F", "°C", 100.4, 38),
        ("°C", "K", 37, 310.15),
        ("Cel", "[degF]", 0, 32),
        ("℃", "°F", -40, -40),
        ("10*9/L", "/µL", 1.5, 1500),
        ("{cells}/uL", "x10^9/L", 800, 0.8),
        ("[IU]/L", "U/L", 35, 35),
        ("mm[Hg]", "mmHg", 120, 120),
        ("mmHg", "kPa", 120, 15.9986864898),
        ("g/24 h", "mg/d", 3.5, 3500),
        ("/min", "/s", 60, 1),
        ("kg/m2", "kg/m^2", 30, 30),
        ("copies/mL", "/L", 50, 50000),
        ("mL/min/1.73 m2", "mL/min/1.73m²", 60, 60),
        ("mL/min/1.73 m2", "mL/s/1.73 m2", 60, 1),
        ("%", "ratio", 70, 0.7),
        ("mmol/mol", "mol/mol", 53, 0.053),
    ],
)
def test_lab_and_ucum_spellings_convert(source, target, value, expected):
    assert units.conversion(source, target)(value) == pytest.approx(expected, rel=1e-9)


def test_hba1c_follows_the_master_equation_only_when_the_analyte_declares_it():
    ifcc_to_ngsp = units.conversion("mmol/mol", "%", analyte="hba1c")
    assert ifcc_to_ngsp(53) == pytest.approx(7.0, abs=0.005)
    assert ifcc_to_ngsp(48) == pytest.approx(6.5, abs=0.05)
    assert units.conversion("%", "mmol/mol", analyte="hba1c")(7.0) == pytest.approx(53.0, abs=0.05)
    with pytest.raises(units.UnitMismatchError, match=r"`mmol/mol` does not convert to `%`.*`conversion`"):
        units.conversion("mmol/mol", "%")


@pytest.mark.parametrize(
    ("source", "target", "reason"),
    [
        ("mmol/mol", "%", "amount of substance per amount of substance and `%` is a plain fraction"),
        ("mL/min", "mL/min/1.73 m2", "`mL/min/1.73 m2` is normalised to body surface area and `mL/min` is not"),
        ("points", "%", "`points` is a score"),
        ("mg/g", "mmol/mol", "a mass per mass"),
        ("mg/dL", "mmol/L", "mass concentration and `mmol/L` is a molar concentration"),
        ("°C", "mL", "a temperature"),
        ("IU/mL", "copies/mL", "count per volume"),
    ],
)
def test_pairs_that_would_convert_wrongly_are_refused_with_the_reason(source, target, reason):
    with pytest.raises(units.UnitMismatchError) as caught:
        units.conversion(source, target)
    assert f"`{source}` does not convert to `{target}`" in str(caught.value)
    assert reason in caught.value.reason


def test_a_factor_is_never_given_for_an_offset_conversion():
    with pytest.raises(units.UnitError, match="offset"):
        units.factor("°C", "°F")
    assert units.factor("g/dL", "g/L") == 10.0


AFFINE_PAIRS = [
    ("°C", "°F", None),
    ("°C", "K", None),
    ("mmol/mol", "%", "hba1c"),
    ("/µL", "x10^9/L", None),
    ("g/24 h", "mg/d", None),
    ("mmHg", "kPa", None),
]


@given(st.sampled_from(AFFINE_PAIRS), st.floats(min_value=-1e4, max_value=1e4, allow_nan=False))
def test_conversions_round_trip(pair, value):
    source, target, analyte = pair
    there = units.conversion(source, target, analyte=analyte)
    back = units.conversion(target, source, analyte=analyte)
    assert back(there(value)) == pytest.approx(value, rel=1e-9, abs=1e-6)


@given(st.sampled_from(AFFINE_PAIRS), st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_conversions_keep_order(pair, a, b):
    """A threshold converted keeps every value on the same side of it."""
    source, target, analyte = pair
    convert = units.conversion(source, target, analyte=analyte)
    if a < b:
        assert convert(a) <= convert(b)


# -- the dictionary ---------------------------------------------------------------------------------


def test_a_percent_variable_accepting_mmol_per_mol_is_refused_without_a_conversion():
    variables = [
        {"name": "hba1c", "type": "number", "unit": "%", "units": ["mmol/mol"]},
        {"name": "egfr", "type": "number", "unit": "mL/min/1.73 m2", "units": ["mL/min"]},
        {"name": "weight", "type": "number", "unit": "kg", "units": ["stone-ish"]},
        {"name": "glucose", "type": "number", "unit": "mmol/L", "conversion": "glucose"},
    ]
    with pytest.raises(ProtocolError) as caught:
        DataDictionary(from_dict(protocol(variables, {})))
    problems = caught.value.problems
    assert len(problems) == 4  # every problem at once
    assert any("`hba1c`: unit `mmol/mol` does not convert to `%`" in p and "conversion" in p for p in problems)
    assert any("`egfr`: unit `mL/min`" in p and "normalised to body surface area" in p for p in problems)
    assert any("`weight`: unknown unit `stone-ish`" in p for p in problems)
    assert any("unknown conversion `glucose` (known: hba1c: HbA1c: IFCC mmol/mol to NGSP %" in p for p in problems)


def test_a_temperature_dictionary_imports(fever_in_celsius):
    assert fever_in_celsius.dictionary.conversions["temp"]["°F"] == units.Conversion(
        units.conversion("°F", "°C").scale, units.conversion("°F", "°C").offset
    )


def test_only_numbers_take_limits_or_conversions():
    with pytest.raises(ProtocolError, match="only numbers have units, a conversion or limits of normal"):
        DataDictionary(from_dict(protocol([{"name": "flag", "type": "boolean", "lln": True}], {})))


def test_lln_and_conversion_survive_the_file_and_leave_old_hashes_alone(seed):
    definition = from_dict(protocol([HBA1C, HGB], {}))
    again = loads(dumps(definition))
    assert again == definition
    assert (again.variables[0].conversion, again.variables[1].lln) == ("hba1c", True)
    assert all("lln" not in v and "conversion" not in v for v in seed.to_dict()["variables"])


# -- temperature at a threshold --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("temp", "outcome"),
    [
        ({"value": 38, "unit": "°C"}, "pass"),
        ({"value": 100.4, "unit": "°F"}, "pass"),
        ({"value": 100.3, "unit": "°F"}, "fail"),
        ({"value": 37.9, "unit": "°C"}, "fail"),
        ("311.15 K", "pass"),
        ("100.4 °F", "pass"),
    ],
)
def test_38_celsius_is_100_4_fahrenheit_at_the_boundary(fever_in_celsius, fever_in_fahrenheit, temp, outcome):
    if isinstance(temp, str) and temp.endswith("K"):
        compiled_list = [fever_in_celsius]
    else:
        compiled_list = [fever_in_celsius, fever_in_fahrenheit]
    for compiled in compiled_list:
        decision = rules.decide(compiled, subject(temp=temp))
        assert decision.outcome("FEVER") == outcome, compiled.dictionary["temp"].unit


def test_the_threshold_is_converted_once_with_its_offset(fever_in_fahrenheit):
    (criterion,) = fever_in_fahrenheit.criteria
    assert criterion.rule.ir.value == 100.4
    sentence = rules.decide(fever_in_fahrenheit, subject(temp="37 °C")).criteria[0].sentence
    assert "98.6 °F" in sentence and "38 °C (100.4 °F)" in sentence


def test_fields_whose_units_differ_by_an_offset_are_not_compared():
    variables = [TEMPERATURE_C, {**TEMPERATURE_F, "name": "temp_f"}]
    dictionary = DataDictionary(from_dict(protocol(variables, {})))
    with pytest.raises(RuleErrors, match="differ by an offset"):
        check_rule("temp >= temp_f", dictionary, kind="inclusion")


# -- HbA1c ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hba1c", "outcome"),
    [
        ("53 mmol/mol", "pass"),
        ("52 mmol/mol", "fail"),
        ("7.0 %", "pass"),
        ("91 mmol/mol", "pass"),
        ("92 mmol/mol", "fail"),
    ],
)
def test_hba1c_in_ifcc_units_is_decided_in_ngsp_percent(diabetes, hba1c, outcome):
    assert rules.decide(diabetes, subject(hba1c=hba1c)).outcome("HBA1C") == outcome


def test_a_rule_may_state_hba1c_in_ifcc_units(diabetes):
    checked = check_rule("hba1c >= 53 mmol/mol", diabetes.dictionary, kind="inclusion")
    assert checked.ir.value == pytest.approx(7.00044)


# -- units in rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message", "suggestion"),
    [
        ("temp >= 38 °K", "is not a unit we know", None),
        ("temp >= 38 mL/min/1.73 m2", "does not fit `temp` (°C): `mL/min/1.73 m2` is normalised to body surface", None),
        ("temp >= 38 degreesC", "is not a unit we know", None),
        ("hgb >= 100 gg/L", "is not a unit we know", "g/L"),
        ("hgb >= 100 mq/dL", "is not a unit we know", "mg/dL"),
        ("hgb >= 100 L^9^9^9", "a power of a power", None),
        ("hgb >= 100 L^99", "a power must be a whole number", None),
    ],
)
def test_unit_problems_in_rules_are_named(fever_in_celsius, anaemia, rule, message, suggestion):
    dictionary = (fever_in_celsius if rule.startswith("temp") else anaemia).dictionary
    with pytest.raises(RuleErrors) as caught:
        check_rule(rule, dictionary, kind="inclusion")
    (error,) = caught.value.errors
    assert message in error.message
    assert error.suggestion == suggestion
    assert error.position.column == rule.index(" ", rule.index("=")) + 2  # under the quantity


@pytest.mark.parametrize(
    "label",
    ["L^9^9^9", "L**(9**9)", "L^99", "x10^999/L", "m" * 41, "L^(((((2)))))", "m^2^2", "L**1.5"],
)
def test_unit_labels_are_bounded_before_pint_sees_them(label):
    with pytest.raises(units.UnknownUnitError):
        units.parse(label)


def test_a_huge_power_in_the_dictionary_is_a_problem_not_a_hang():
    variables = [{"name": "v", "type": "number", "unit": "L", "units": ["L^9^9^9"]}]
    with pytest.raises(ProtocolError, match="unknown unit `L\\^9\\^9\\^9`: a power of a power"):
        DataDictionary(from_dict(protocol(variables, {})))


def test_an_unknown_unit_gets_a_suggestion():
    assert units.suggest("mg/dl") == "mg/dL"
    assert units.suggest("umol/ll") == "µmol/L"
    assert units.suggest("zzzz") is None


# -- lower limit of normal ------------------------------------------------------------------------


def test_lln_gets_its_companion(anaemia):
    companion = anaemia.dictionary["hgb_lln"]
    assert companion.companion_of == "hgb"
    assert companion.label.endswith("lower limit of normal")
    assert companion.unit == "g/L"


@pytest.mark.parametrize(
    ("hgb", "outcomes"),
    [
        ({"value": 120, "unit": "g/L", "lln": 120, "uln": 160}, {"HGB-LOW": "pass", "HGB-HIGH": "pass"}),
        ({"value": 11.9, "unit": "g/dL", "lln": 12, "uln": 16}, {"HGB-LOW": "fail", "HGB-HIGH": "pass"}),
        ({"value": 193, "unit": "g/L", "lln": 120, "uln": 160}, {"HGB-LOW": "pass", "HGB-HIGH": "fail"}),
        ({"value": 130, "lln": 120}, {"HGB-LOW": "pass", "HGB-HIGH": "unknown"}),
        (130, {"HGB-LOW": "unknown", "HGB-BARE": "unknown"}),
    ],
)
def test_values_are_compared_with_their_own_lab_lower_limit(anaemia, hgb, outcomes):
    decision = rules.decide(anaemia, subject(hgb=hgb))
    for code, outcome in outcomes.items():
        assert decision.outcome(code) == outcome


def test_the_lln_may_be_submitted_on_its_own_and_shows_in_the_sentence(anaemia):
    decision = rules.decide(anaemia, subject(hgb="110 g/L", hgb_lln="12 g/dL"))
    low = next(c for c in decision.criteria if c.code == "HGB-LOW")
    assert low.outcome == "fail"
    assert "LLN" in low.sentence and "120 g/L" in low.sentence


def test_lln_input_errors_name_the_companion(anaemia):
    with pytest.raises(SubjectInputErrors) as caught:
        rules.decide(anaemia, subject(hgb={"value": 130, "lln": "low"}))
    assert [e.field for e in caught.value.errors] == ["hgb_lln"]
    with pytest.raises(SubjectInputErrors) as caught:
        rules.decide(anaemia, subject(hgb={"value": 130, "lower": 120}))
    assert caught.value.errors[0].expected == "{value, unit, uln, lln}"


def test_lln_in_a_rule_needs_the_variable_to_declare_it(fever_in_celsius):
    with pytest.raises(RuleErrors, match="`temp` has no lower limit of normal; mark it `lln`"):
        check_rule("temp >= 1 x LLN", fever_in_celsius.dictionary, kind="inclusion")


def test_a_moved_lln_multiple_shows_in_the_diff():
    hgb = from_dict(protocol([HGB], {})).variables[0]
    (change,) = rule_changes("hgb >= 1 x LLN", "hgb >= 0.9 x LLN", {"hgb": hgb})
    assert change.text.endswith(">= 1 x LLN → >= 0.9 x LLN (looser)")


def test_a_temperature_threshold_rewritten_in_another_unit_is_the_same_value():
    temp = from_dict(protocol([TEMPERATURE_C], {})).variables[0]
    (change,) = rule_changes("temp >= 38 °C", "temp >= 100.4 °F", {"temp": temp})
    assert change.kind == "unit" and "(same value)" in change.text


UNIT_ALPHABET = st.sampled_from(list("Lmgkdol/^*()0123456789.-µ%°CF{}[] xe"))


@given(st.text(UNIT_ALPHABET, max_size=units.MAX_LABEL_LENGTH + 5), st.sampled_from(["L", "°C", "%", "mg/dL"]))
def test_any_label_is_a_unit_or_a_unit_error(label, target):
    """Whatever a writer types, the answer is a conversion or a UnitError, never pint's own exceptions."""
    with contextlib.suppress(units.UnitError):
        units.conversion(label, target, "113.12 g/mol")


@pytest.mark.parametrize(
    ("rule", "unit"),
    [
        ("temp >= 38 °C", "°C"),
        ("temp >= 100.4 °F and flag", "°F"),
        ("egfr >= 60 mL/min/1.73 m2", "mL/min/1.73 m2"),
        ("egfr >= 60 mL/min/1.73m² or flag", "mL/min/1.73m²"),
        ("protein <= 3.5 g/24 h", "g/24 h"),
        ("protein <= 3.5 g/24 hours and flag", "g/24 hours"),
        ("wbc >= 3 10*9/L", "10*9/L"),
        ("wbc >= 3 x10^9/L", "x10^9/L"),
        ("cd4 >= 200 {cells}/uL", "{cells}/uL"),
        ("alt <= 40 [IU]/L", "[IU]/L"),
        ("sbp < 140 mm[Hg]", "mm[Hg]"),
        ("sbp < 140 mmHg", "mmHg"),
        ("pulse > 100 /min", "/min"),
        ("bmi >= 30 kg/m2", "kg/m2"),
        ("viral_load < 50 copies/mL", "copies/mL"),
    ],
)
def test_ucum_spellings_parse_in_rules(rule, unit):
    tree = parse_rule(rule)
    comparison = tree.operands[0] if isinstance(tree, ast.All | ast.Any) else tree
    assert comparison.operand.unit == unit


def test_body_surface_normalised_thresholds_check_against_the_dictionary():
    egfr = {"name": "egfr", "type": "number", "unit": "mL/min/1.73 m2", "units": ["mL/s/1.73 m2"]}
    dictionary = DataDictionary(from_dict(protocol([egfr], {})))
    assert check_rule("egfr >= 1 mL/s/1.73m²", dictionary, kind="inclusion").ir.value == 60
    with pytest.raises(RuleErrors, match="normalised to body surface area"):
        check_rule("egfr >= 60 mL/min", dictionary, kind="inclusion")
