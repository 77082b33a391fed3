"""Any trial's shapes compile and decide: wide and deep conditions, exceptions in both kinds, named conditions.

Each large shape is checked against the plain-Python reference on generated subjects, since
the engine now decides it through sub-condition facts rather than one rule per combination.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from rules.compiler import compile_protocol
from rules.errors import ProtocolError, RuleErrors
from rules.protocol import from_dict

N = 60


def protocol(*criteria: dict[str, Any], variables: list[dict[str, Any]] | None = None, cohorts=None) -> Any:
    base = [{"name": f"b{i}", "type": "boolean"} for i in range(N)]
    base += [{"name": f"x{i}", "type": "number", "unit": "g/L"} for i in range(N)]
    return compile_protocol(
        from_dict(
            {
                "protocol": "SCALE",
                "title": "t",
                "version": "1",
                "cohorts": [{"code": "A", "label": "A"}] if cohorts is None else cohorts,
                "variables": base + (variables or []),
                "criteria": list(criteria),
            }
        )
    )


def inclusion(rule: str, code: str = "C1", kind: str = "inclusion") -> dict[str, Any]:
    return {"code": code, "kind": kind, "text": rule[:60], "rule": rule}


def agree(compiled, subject: dict[str, Any]) -> rules.Decision:
    decided = rules.decide(compiled, subject)
    reference = rules.decide_reference(compiled, subject)
    assert decided.outcomes() == reference.outcomes()
    assert decided.decision == reference.decision
    return decided


def subject_of(bits: dict[int, bool | None], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"cohort": "A", "screening_date": "2026-11-02", **extra}
    data.update({f"b{i}": v for i, v in bits.items() if v is not None})
    return data


TRUTHS = st.dictionaries(st.integers(0, N - 1), st.one_of(st.none(), st.booleans()), max_size=N)


@pytest.mark.parametrize("alternatives", [1, 2, 13, 14, 15, 16, 30, 50])
def test_any_of_many_alternatives_decides(alternatives):
    compiled = protocol(inclusion("any of (" + ", ".join(f"b{i}" for i in range(alternatives)) + ")"))
    assert agree(compiled, subject_of({alternatives - 1: True})).decision == "eligible"
    assert agree(compiled, subject_of(dict.fromkeys(range(alternatives), False))).decision == "not_eligible"
    assert agree(compiled, subject_of({0: False})).decision == "incomplete" if alternatives > 1 else True


@pytest.mark.parametrize("tests", [14, 20, 50])
def test_and_of_many_tests_decides(tests):
    compiled = protocol(inclusion(" and ".join(f"x{i} >= {i} g/L" for i in range(tests))))
    full = {f"x{i}": i for i in range(tests)}
    assert agree(compiled, subject_of({}, **full)).decision == "eligible"
    assert agree(compiled, subject_of({}, **{**full, "x3": 2})).decision == "not_eligible"
    assert agree(compiled, subject_of({}, **{k: v for k, v in full.items() if k != "x7"})).decision == "incomplete"


@pytest.mark.parametrize(("needed", "items"), [(4, 11), (2, 7), (1, 30), (15, 30), (30, 30), (2, 50)])
def test_at_least_k_of_many_items_decides(needed, items):
    compiled = protocol(inclusion(f"at least {needed} of (" + ", ".join(f"b{i}" for i in range(items)) + ")"))
    met = dict.fromkeys(range(needed), True)
    assert agree(compiled, subject_of(met)).decision == "eligible"
    short = {**dict.fromkeys(range(items), False), **dict.fromkeys(range(needed - 1), True)}
    assert agree(compiled, subject_of(short)).decision == "not_eligible"
    assert agree(compiled, subject_of(dict.fromkeys(range(needed - 1), True))).decision == "incomplete"


@settings(max_examples=60, deadline=None)
@given(TRUTHS)
def test_the_acr_lupus_count_agrees_with_the_reference(bits):
    compiled = ACR
    agree(compiled, subject_of(bits))


ACR = protocol(inclusion("at least 4 of (" + ", ".join(f"b{i}" for i in range(11)) + ")"))


def _nested(depth: int) -> str:
    text = "b0"
    for level in range(1, depth + 1):
        joiner = " or " if level % 2 else " and "
        text = f"({text}{joiner}b{level})" if level < depth else f"{text}{joiner}b{level}"
    return text


@settings(max_examples=40, deadline=None)
@given(TRUTHS)
def test_nesting_six_deep_agrees_with_the_reference(bits):
    agree(DEEP, subject_of(bits))


DEEP = protocol(inclusion(_nested(6)))


@settings(max_examples=40, deadline=None)
@given(TRUTHS)
def test_mixed_wide_shapes_agree_with_the_reference(bits):
    agree(MIXED, subject_of(bits))


MIXED = protocol(
    inclusion(
        "at least 3 of (" + ", ".join(f"(b{i} or b{i + 1} and not b{i + 2})" for i in range(0, 30, 3)) + ")", "M1"
    ),
    inclusion("any of (" + ", ".join(f"b{i} and b{i + 30}" for i in range(20)) + ")", "M2", "exclusion"),
)


def test_a_protocol_of_150_criteria_compiles_and_decides():
    criteria = [
        inclusion(f"x{i % N} >= 1 g/L or (b{i % N} and not b{(i + 1) % N}) unless b{(i + 2) % N}", f"C{i}")
        if i % 10
        else inclusion(f"at least 2 of (b{i % N}, b{(i + 1) % N}, x{i % N} >= 3 g/L, b{(i + 3) % N})", f"C{i}")
        for i in range(150)
    ]
    compiled = protocol(*criteria)
    full = {f"x{i}": 2 for i in range(N)}
    assert agree(compiled, subject_of(dict.fromkeys(range(N), True), **full)).decision == "eligible"
    assert agree(compiled, subject_of(dict.fromkeys(range(N), False), **full)).decision == "not_eligible"
    assert agree(compiled, subject_of({})).decision == "incomplete"


# -- exceptions spare the subject whatever the criterion's kind -------------------------------

EXCEPTION = [
    {"name": "prior_cd19_therapy", "type": "boolean"},
    {"name": "eligible_retreatment", "type": "boolean"},
]


@pytest.mark.parametrize(
    ("prior", "retreatment", "outcome"),
    [
        (True, False, "fail"),  # excluded
        (True, True, "pass"),  # spared by the exception
        (False, None, "pass"),  # nothing to exclude: the exception is not needed
        (False, False, "pass"),
        (None, True, "pass"),  # spared whatever the prior therapy
        (True, None, "unknown"),
        (None, False, "unknown"),
    ],
)
def test_unless_in_an_exclusion_spares_the_subject(prior, retreatment, outcome):
    compiled = protocol(
        inclusion("prior_cd19_therapy unless eligible_retreatment", "EX-1", "exclusion"), variables=EXCEPTION
    )
    data = subject_of({})
    if prior is not None:
        data["prior_cd19_therapy"] = prior
    if retreatment is not None:
        data["eligible_retreatment"] = retreatment
    assert agree(compiled, data).outcome("EX-1") == outcome


@pytest.mark.parametrize(
    ("value", "waived", "outcome"), [(5, False, "pass"), (1, False, "fail"), (1, True, "pass"), (None, True, "pass")]
)
def test_unless_in_an_inclusion_still_waives_the_requirement(value, waived, outcome):
    compiled = protocol(inclusion("x0 >= 2 g/L unless b0"))
    data = subject_of({0: waived})
    if value is not None:
        data["x0"] = value
    assert agree(compiled, data).outcome("C1") == outcome


def test_unless_under_not_in_an_exclusion_still_spares():
    """`not (X unless Y)` in an exclusion reads as an inclusion would: Y spares."""
    compiled = protocol(inclusion("not (x0 >= 2 g/L unless b0)", "EX-2", "exclusion"))
    assert agree(compiled, subject_of({0: True}, x0=1)).outcome("EX-2") == "pass"
    assert agree(compiled, subject_of({0: False}, x0=1)).outcome("EX-2") == "fail"


# -- named conditions --------------------------------------------------------------------------

NAMED = [
    {"name": "active_hepatitis_b", "type": "boolean", "condition": "b0 or (b1 and x0 >= 20 g/L)"},
    {"name": "any_hepatitis", "type": "boolean", "condition": "active_hepatitis_b or b2"},
]


def test_a_named_condition_is_reused_by_several_criteria():
    compiled = protocol(
        inclusion("active_hepatitis_b", "EX-1", "exclusion"),
        inclusion("not any_hepatitis or b3", "IN-1"),
        variables=NAMED,
    )
    positive = agree(compiled, subject_of({0: True, 3: False}))
    assert positive.outcomes() == {"EX-1": "fail", "IN-1": "fail"}
    unknown = agree(compiled, subject_of({0: False, 1: True, 2: False, 3: False}))
    assert unknown.outcomes() == {"EX-1": "unknown", "IN-1": "unknown"}
    assert unknown.missing == ["x0"]
    clear = agree(compiled, subject_of({0: False, 1: False, 2: False}))
    assert clear.outcomes() == {"EX-1": "pass", "IN-1": "pass"}


def test_a_named_condition_is_never_submitted():
    compiled = protocol(inclusion("active_hepatitis_b", "EX-1", "exclusion"), variables=NAMED)
    with pytest.raises(rules.SubjectInputErrors, match="active_hepatitis_b"):
        rules.decide(compiled, subject_of({}, active_hepatitis_b=True))


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        (
            [
                {"name": "loop_a", "type": "boolean", "condition": "loop_b"},
                {"name": "loop_b", "type": "boolean", "condition": "loop_a"},
            ],
            "cycle",
        ),
        ([{"name": "named", "type": "number", "condition": "b0"}], "make its type boolean"),
        ([{"name": "named", "type": "boolean", "condition": "b0 unless b1"}], "`unless` needs a criterion"),
        ([{"name": "named", "type": "boolean", "condition": "b0 and nope"}], "unknown variable `nope`"),
    ],
)
def test_bad_named_conditions_are_refused_when_written(variables, problem):
    with pytest.raises((ProtocolError, RuleErrors), match=problem):
        protocol(inclusion("b0"), variables=variables)
