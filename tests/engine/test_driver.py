"""The driver's shortcuts decide exactly what stopping at every rule it acts on decided.

`DurableEngine.run` lets the engine fire `derive:` and `node:` rules without stopping and does
their work when the engine stops at the stage's `advance:`; `outcomes_of` reads outcomes with set
operations over the fired rules' names. Both are checked here against the plain way: stopping
at each rule to act on, and a criterion's outcome read from each name in turn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

import durable_rules_engine as native
import pytest

import rules
from rules.compiler import CompiledProtocol
from rules.engine import DurableEngine, add_thresholds, outcomes_of
from rules.errors import EngineError, SubjectInputErrors

EXAMPLE = "NCT02074020"  # named conditions, sub-conditions and an `at least k of` tally over three stages


@pytest.fixture(scope="module")
def staged() -> CompiledProtocol:
    text = files("rules").joinpath(f"protocols/examples/{EXAMPLE}.yaml").read_text(encoding="utf-8")
    compiled = rules.compile_protocol(rules.loads_protocol(text))
    assert compiled.stages == 2 and compiled.subconditions and compiled.tallies
    return compiled


def _stepwise(engine: DurableEngine, compiled: CompiledProtocol, values: Mapping[str, Any]) -> tuple[dict, list]:
    """The driver as it was: the engine stops at every `derive:`, `node:` and `advance:` rule."""
    stops = ("derive:", "advance:", "node:")
    handle = engine.load(compiled)
    current = dict(values)
    add_thresholds(compiled, 0, current)
    fired: list[str] = []
    sid = "stepwise"
    try:
        result = native.assert_fact(handle, engine._fact(compiled, sid, 0, current))
        if result[0] != 1:
            names, acting = native.fire_actions(handle, result[1], False, stops)
            fired += names
            while acting:
                engine._act(handle, compiled, sid, names[-1], current)
                names, acting = native.fire_actions(handle, result[1], True, stops)
                fired += names
    finally:
        native.delete_state(handle, sid)
    return current, fired


def _subjects(compiled: CompiledProtocol) -> list[dict[str, Any]]:
    """Each test case, then each with one value left out in turn: every stage reached and skipped."""
    found = []
    for case in compiled.definition.test_cases:
        subject = dict(case.subject)
        variants = [subject] + [{k: v for k, v in subject.items() if k != key} for key in subject if key != "cohort"]
        for variant in variants:
            try:
                found.append(compiled.dictionary.normalize(variant).values)
            except SubjectInputErrors:
                continue
    return found


@pytest.mark.parametrize("protocol", ["seed", EXAMPLE])
def test_acting_at_each_stage_end_gives_what_stopping_at_every_rule_gave(protocol, compiled, staged):
    chosen = compiled if protocol == "seed" else staged
    engine = DurableEngine()
    subjects = _subjects(chosen)
    assert len(subjects) > 50
    for values in subjects:
        assert engine.run(chosen, values) == _stepwise(engine, chosen, values)


def _named(fired: list[str]) -> dict[str, str]:
    """Outcomes read one name at a time: the definition `outcomes_of` must equal."""
    found: dict[str, str] = {}
    for name in fired:
        code, _, outcome = name.partition(":")
        if outcome in ("pass", "fail", "unknown"):
            found[code] = outcome
    return found


def _sle(compiled: CompiledProtocol, subject) -> tuple[dict[str, Any], list[str]]:
    values = compiled.dictionary.normalize(subject("SLE", {"alt": None})).values
    return DurableEngine().run(compiled, values)


def test_outcomes_are_plain_strings_in_the_protocols_order(compiled, subject):
    current, fired = _sle(compiled, subject)
    outcomes = outcomes_of(compiled, fired, current)
    assert list(outcomes) == [c.code for c in compiled.criteria]
    assert {type(o) for o in outcomes.values()} == {str}
    decided = _named(fired)
    for code, outcome in outcomes.items():
        assert outcome == decided.get(code, "not_applicable")
    assert outcomes["IN-03d"] == "unknown" and outcomes["IN-SSC-1"] == "not_applicable"


def test_a_rule_fired_twice_is_one_outcome(compiled, subject):
    current, fired = _sle(compiled, subject)
    assert outcomes_of(compiled, [*fired, "IN-02:pass", "IN-02:pass"], current) == outcomes_of(compiled, fired, current)


def test_two_outcomes_for_one_criterion_are_an_error(compiled, subject):
    current, fired = _sle(compiled, subject)
    assert "IN-02:pass" in fired
    with pytest.raises(EngineError, match=r"criterion IN-02 two outcomes \(pass, fail\)"):
        outcomes_of(compiled, [*fired, "IN-02:fail"], current)


def test_an_outcome_for_a_cohort_the_criterion_does_not_apply_to_is_an_error(compiled, subject):
    current, fired = _sle(compiled, subject)
    with pytest.raises(EngineError, match="criterion IN-SSC-1 was decided for cohort SLE"):
        outcomes_of(compiled, [*fired, "IN-SSC-1:pass"], current)


def test_a_criterion_without_an_outcome_is_an_error(compiled, subject):
    current, fired = _sle(compiled, subject)
    with pytest.raises(EngineError, match="no outcome for criterion IN-02"):
        outcomes_of(compiled, [name for name in fired if name != "IN-02:pass"], current)
    with pytest.raises(EngineError, match="no outcome for criterion IN-SSC-1"):  # its cohort's rule left out
        outcomes_of(compiled, [name for name in fired if name != "not_applicable:SSc"], current)


@pytest.mark.parametrize("protocol", ["seed", EXAMPLE])
def test_each_stages_fact_holds_exactly_the_fields_its_rules_read(protocol, compiled, staged):
    chosen = compiled if protocol == "seed" else staged
    for values in _subjects(chosen)[:40]:
        current = dict(values)
        add_thresholds(chosen, 0, current)
        for stage, wanted in enumerate(chosen.stage_fields):
            expected = {name: value for name, value in current.items() if name in wanted}
            for extra in ({}, {"not_a_field": 1}):  # a field the version does not know takes the slow way
                fact = json.loads(DurableEngine._fact(chosen, "9", stage, {**current, **extra}))
                assert fact == {**expected, "sid": "9", "id": f"s{stage}", "t": f"stage{stage}"}
