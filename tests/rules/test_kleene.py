"""Properties of three-valued decisions, checked on generated subjects and generated rules.

The engine must agree with the plain-Python reference evaluation of the same
compiled rules, a definite outcome must never change when more data arrives,
and a failure must decide the subject whatever else is missing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from rules import ir
from rules.compiler import CompiledProtocol
from rules.decision import combine
from rules.protocol import from_dict

SCREENING = dt.date(2026, 11, 2)


def _value(variable) -> st.SearchStrategy[Any]:
    d = variable.definition
    if variable.type == "boolean":
        return st.booleans()
    if variable.type == "code":
        return st.sampled_from(d.codes)
    if variable.type == "date":
        return st.integers(min_value=-2200, max_value=0).map(lambda days: (SCREENING + dt.timedelta(days)).isoformat())
    low = d.minimum if d.minimum is not None else 0
    high = min(d.maximum if d.maximum is not None else 1000, max(low + 1, 4 * (low + 50)))
    # Whole and half numbers hit thresholds exactly often enough to test boundaries.
    return st.integers(min_value=int(low * 2), max_value=int(high * 2)).map(lambda n: n / 2)


def subjects(compiled: CompiledProtocol, fill: float = 0.8) -> st.SearchStrategy[dict[str, Any]]:
    inputs = [v for v in compiled.dictionary.variables.values() if not v.is_derived and not v.builtin]

    @st.composite
    def build(draw) -> dict[str, Any]:
        subject: dict[str, Any] = {
            "cohort": draw(st.sampled_from([c.code for c in compiled.definition.cohorts])),
            "screening_date": SCREENING.isoformat(),
        }
        for variable in inputs:
            if draw(st.floats(0, 1)) < fill:
                subject[variable.name] = draw(_value(variable))
        return subject

    return build()


SEED = rules.compile_protocol(rules.seed_protocol())
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(subjects(SEED))
def test_engine_agrees_with_reference_on_seed_subjects(subject):
    engine = rules.decide(SEED, subject)
    reference = rules.decide_reference(SEED, subject)
    assert engine.outcomes() == reference.outcomes()
    assert engine.decision == reference.decision
    assert engine.missing == reference.missing


@FAST
@given(subjects(SEED, fill=1.0), st.data())
def test_more_data_never_changes_a_definite_outcome(full, data):
    keep = data.draw(st.sets(st.sampled_from(sorted(full))))
    partial = {k: v for k, v in full.items() if k in keep or k in ("cohort", "screening_date")}
    complete = rules.decide(SEED, full).outcomes()
    for code, outcome in rules.decide(SEED, partial).outcomes().items():
        if outcome != "unknown":
            assert complete[code] == outcome, code


@FAST
@given(subjects(SEED, fill=0.5))
def test_any_failure_decides_whatever_is_missing(subject):
    decision = rules.decide(SEED, subject)
    outcomes = [c.outcome for c in decision.criteria]
    assert decision.decision == combine(outcomes)
    if "fail" in outcomes:
        assert decision.decision == "not_eligible"
    elif decision.decision == "incomplete":
        assert decision.missing, "an incomplete decision must say what is missing"


# -- Kleene laws of the reference evaluator ------------------------------------------------

TRUTH = st.sampled_from([True, False, None])


@given(TRUTH, TRUTH)
def test_kleene_and_or_not(a, b):
    values = {"a": a, "b": b}
    values = {k: v for k, v in values.items() if v is not None}
    A, B = ir.Test("a", "==", True), ir.Test("b", "==", True)
    both = ir.evaluate(ir.Group("all", (A, B)), values)
    either = ir.evaluate(ir.Group("any", (A, B)), values)
    assert both == (False if False in (a, b) else None if None in (a, b) else True)
    assert either == (True if True in (a, b) else None if None in (a, b) else False)
    assert ir.evaluate(ir.Group("not", (ir.Group("all", (A, B)),)), values) == (None if both is None else not both)


@given(st.lists(TRUTH, min_size=1, max_size=6), st.integers(min_value=1, max_value=6))
def test_at_least_k(values, k):
    k = min(k, len(values))
    items = tuple(ir.Test(f"v{i}", "==", True) for i in range(len(values)))
    facts = {f"v{i}": v for i, v in enumerate(values) if v is not None}
    result = ir.evaluate(ir.Group("at_least", items, count=k), facts)
    true, unknown = values.count(True), values.count(None)
    assert result == (True if true >= k else False if true + unknown < k else None)


# -- generated rules through the compiler and the engine -----------------------------------

SMALL = {
    "protocol": "GEN",
    "title": "generated",
    "version": "1",
    "cohorts": [{"code": "A", "label": "A"}],
    "variables": [
        {"name": "n1", "type": "number", "unit": "g/L", "units": ["g/dL"], "minimum": 0, "maximum": 10},
        {"name": "n2", "type": "number", "unit": "g/L", "minimum": 0, "maximum": 10, "uln": True},
        {"name": "p", "type": "boolean"},
        {"name": "q", "type": "boolean"},
        {"name": "c", "type": "code", "codes": ["x", "y", "z"]},
        {"name": "d", "type": "date"},
    ],
}

ATOMS = st.sampled_from(
    [
        "n1 >= 3 g/L",
        "n1 < 0.5 g/dL",
        "n2 <= 1.5 x ULN",
        "n1 > n2",
        "n2 between 2 and 6 g/L",
        "p",
        "q",
        "c is x",
        "c in (y, z)",
        "c is not z",
        "d within 10 days before screening",
        "d not within 2 weeks before screening",
    ]
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda ab: f"({ab[0]} and {ab[1]})"),
        pair.map(lambda ab: f"({ab[0]} or {ab[1]})"),
        pair.map(lambda ab: f"({ab[0]} unless {ab[1]})"),
        pair.map(lambda ab: f"(if {ab[0]} then {ab[1]})"),
        children.map(lambda a: f"not {a}"),
        st.lists(children, min_size=2, max_size=4).flatmap(
            lambda items: st.integers(1, len(items)).map(lambda k: f"at least {k} of ({', '.join(items)})")
        ),
    )


RULES = st.recursive(ATOMS, _combine, max_leaves=6)
SMALL_VALUES = {
    "n1": st.integers(0, 20).map(lambda n: n / 2),
    "n2": st.integers(0, 20).map(lambda n: n / 2),
    "n2_uln": st.integers(1, 8).map(lambda n: n / 2),
    "p": st.booleans(),
    "q": st.booleans(),
    "c": st.sampled_from(["x", "y", "z"]),
    "d": st.integers(-20, 0).map(lambda days: (SCREENING + dt.timedelta(days)).isoformat()),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RULES, st.sampled_from(["inclusion", "exclusion"]), st.data())
def test_engine_agrees_with_reference_on_generated_rules(rule, kind, data):
    protocol = from_dict({**SMALL, "criteria": [{"code": "R", "kind": kind, "text": rule, "rule": rule}]})
    compiled = rules.compile_protocol(protocol)
    for _ in range(8):
        subject = {"cohort": "A", "screening_date": SCREENING.isoformat()}
        for name, strategy in SMALL_VALUES.items():
            if data.draw(st.booleans()):
                subject[name] = data.draw(strategy)
        assert rules.decide(compiled, subject).outcomes() == rules.decide_reference(compiled, subject).outcomes(), (
            rule,
            subject,
        )
