"""The criterion language: what parses, and the positioned errors for what does not."""

from __future__ import annotations

import pytest

from rules import ast, ir
from rules.checker import check_rule
from rules.errors import RuleErrors, RuleSyntaxError, RuleValidationError
from rules.parser import parse_rule


@pytest.mark.parametrize(
    ("text", "node_type"),
    [
        ("wbc >= 3 x10^9/L", ast.Comparison),
        ("anc ≥ 1 ×10⁹/L", ast.Comparison),
        ("alt <= 3 x ULN unless alt_elevation_myopathy", ast.Unless),
        ("tbil <= 1.5 x ULN or (gilbert_syndrome and tbil <= 3 x ULN)", ast.Any),
        ("at least 2 of (phga >= 2, ptga >= 2, haq >= 0.25)", ast.AtLeast),
        ("any of (pregnant, pregnancy_planned)", ast.AtLeast),
        ("last_csf_date not within 14 days before screening", ast.Within),
        ("age between 18 and 65 years", ast.Between),
        ("sex is female", ast.Membership),
        ("cohort in (SLE, SSc)", ast.Membership),
        ("if sex is female then not breastfeeding", ast.Implies),
        ("not pregnant  # a comment", ast.Not),
        ("hgb>=60g/L", ast.Comparison),
        ("AGE BETWEEN 18 AND 65 YEARS", ast.Between),
    ],
)
def test_rules_parse(text, node_type):
    assert isinstance(parse_rule(text), node_type)


def test_positions_point_into_the_text():
    tree = parse_rule("wbc >= 3 x10^9/L and\n  anc >= 1 x10^9/L")
    second = tree.operands[1]
    assert (second.position.line, second.position.column) == (2, 3)
    assert second.operand.unit == "x10^9/L"


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("anc >= ", "ends too early", 1, 8),
        ("anc >= 1 and (wbc > 3", "unclosed parenthesis", 1, 22),
        ("a and b)", "has no matching `(`", 1, 8),
        ("anc @ 3", "unexpected character '@'", 1, 5),
        ("anc >=> 1", "unexpected `>`", 1, 7),
        ("at least of (a)", "expected a number", 1, 10),
        ("wbc >= 3 and\nanc >= >= 1", "unexpected `>=`", 2, 8),
        ("", "empty", 1, 1),
    ],
)
def test_syntax_errors_are_positioned(compiled, text, message, line, column):
    with pytest.raises(RuleErrors) as caught:
        check_rule(text, compiled.dictionary, kind="inclusion")
    (error,) = caught.value.errors
    assert isinstance(error, RuleSyntaxError)
    assert message in error.message
    assert (error.position.line, error.position.column) == (line, column)
    caret = error.context().splitlines()[-1]
    assert caret == " " * (column - 1) + "^"


@pytest.mark.parametrize(
    ("text", "message", "column", "suggestion"),
    [
        ("anx >= 1 x10^9/L", "unknown variable `anx`", 1, "anc"),
        ("anc >= 1 mg/dL", "`mg/dL` does not fit `anc` (x10^9/L)", 8, None),
        ("anc >= 1 wombats", "is not a unit we know", 8, None),
        ("anc >= 1", "missing unit: `anc` is measured in x10^9/L", 8, None),
        ("cd19_positive >= 3", "`cd19_positive` is a boolean", 1, None),
        ("anc", "`anc` is a number, not yes/no", 1, None),
        ("sex is other", "`other` is not a code of `sex`", 1, None),
        ("wbc <= 3 x ULN", "`wbc` has no upper limit of normal", 8, None),
        ("sledai_2k >= 6 mg", "`mg` does not fit `sledai_2k`", 14, None),
        ("bilag_a_count >= 1 mg", "has no unit", 18, None),
        ("serum_hcg_date within 7 parsecs before screening", "days, weeks, months or years", 23, None),
        ("last_other_trial_date within 1.5 months before screening", "whole number", 30, None),
        ("at least 3 of (pregnant, breastfeeding)", "can never be met", 1, None),
        ("age between 65 and 18 years", "lower bound is above", 13, None),
        ("weight >= age", "`age` (years) does not convert to `weight` (kg)", 11, None),
    ],
)
def test_validation_errors_are_positioned(compiled, text, message, column, suggestion):
    with pytest.raises(RuleErrors) as caught:
        check_rule(text, compiled.dictionary, kind="inclusion")
    error = caught.value.errors[0]
    assert isinstance(error, RuleValidationError)
    assert message in error.message
    assert error.position.column == column
    assert error.suggestion == suggestion


def test_every_problem_is_reported_at_once(compiled):
    with pytest.raises(RuleErrors) as caught:
        check_rule("anx >= 1 x10^9/L and hgb >= 6 mmol/L and sex is other", compiled.dictionary, kind="inclusion")
    assert [e.position.column for e in caught.value.errors] == [1, 29, 42]


def test_thresholds_are_converted_to_the_canonical_unit(compiled):
    checked = check_rule("anc >= 1500 /µL and hgb >= 6 g/dL", compiled.dictionary, kind="inclusion")
    anc, hgb = checked.ir.items
    assert (anc.value, hgb.value) == (1.5, 60.0)


def test_uln_multiples_become_exact_computed_thresholds(compiled):
    checked = check_rule("inr <= 1.5 x ULN", compiled.dictionary, kind="inclusion")
    assert checked.ir == ir.Test("inr", "<=", other="_inr_uln_x1_5", basis="inr_uln", shown="1.5 x ULN")
    (threshold,) = checked.computed
    assert (threshold.kind, threshold.source, threshold.amount) == ("scale", "inr_uln", 1.5)


def test_unless_and_implies_lower_to_kleene_or(compiled):
    unless = check_rule("alt <= 3 x ULN unless alt_elevation_myopathy", compiled.dictionary, kind="inclusion").ir
    implies = check_rule("if pregnant then breastfeeding", compiled.dictionary, kind="inclusion").ir
    assert isinstance(unless, ir.Group) and (unless.op, unless.style) == ("any", "unless")
    assert isinstance(implies, ir.Group) and implies.items[0].op == "not"
