"""Hostile rule text: whatever is typed, the checker answers with a result or a positioned error.

The grammar is fuzzed two ways: arbitrary text, and sequences of the language's own tokens (which
reach much deeper into the parser than random characters do).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from rules.checker import check_rule
from rules.errors import RuleErrors, SubjectInputErrors

COMPILED = rules.compile_protocol(rules.seed_protocol())
DICTIONARY = COMPILED.dictionary

TOKENS = [
    "anc",
    "hgb",
    "age",
    "sex",
    "cohort",
    "alt",
    "gilbert_syndrome",
    "last_csf_date",
    "screening",
    "nope",
    ">=",
    "<=",
    ">",
    "<",
    "=",
    "!=",
    "≥",
    "(",
    ")",
    ",",
    "and",
    "or",
    "not",
    "unless",
    "if",
    "then",
    "between",
    "within",
    "before",
    "is",
    "in",
    "at least",
    "any of",
    "all of",
    "of",
    "x",
    "ULN",
    "1",
    "0.5",
    "1e9",
    "-3",
    "3",
    "x10^9/L",
    "/µL",
    "g/dL",
    "mg/dL",
    "days",
    "weeks",
    "months",
    "years",
    "%",
    "female",
    "SLE",
    '"quoted"',
    "#comment\n",
    "\n",
    "\t",
    "",
    "ü",
    "∞",
]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _answers(text: str) -> None:
    try:
        check_rule(text, DICTIONARY, kind="inclusion")
    except RuleErrors as errors:
        assert errors.errors
        for error in errors.errors:
            assert error.position is not None
            assert 1 <= error.position.line <= max(1, text.count("\n") + 1)
            assert error.position.column >= 1
            error.context()  # draws without failing


@FUZZ
@given(st.text(max_size=80))
def test_any_text_gets_a_result_or_a_positioned_error(text):
    _answers(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join))
def test_any_sequence_of_tokens_gets_a_result_or_a_positioned_error(text):
    _answers(text)


# -- hostile subjects ------------------------------------------------------------------------

NAMES = [v.name for v in COMPILED.definition.variables] + ["cohort", "screening_date", "nope", ""]
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±inf included: JSON from Python can carry them
    | st.text(max_size=12)
    | st.sampled_from(["SLE", "ITP", "2026-11-02", "1.5", "1,5", "800", "yes", "x10^9/L", "g/dL", "mg/dL", "/µL"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["value", "unit", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(NAMES), JSON_VALUES, max_size=12))
def test_any_subject_gets_a_decision_or_its_input_errors(data):
    """Whatever JSON a subject holds, the answer is a decision or errors naming fields, never a crash."""
    try:
        decision = rules.decide(COMPILED, data)
    except SubjectInputErrors as errors:
        assert errors.errors and all(e.field and e.expected for e in errors.errors)
        assert all(e.as_dict()["field"] for e in errors.errors)
    else:
        assert decision.decision in ("eligible", "not_eligible", "incomplete")
