"""The durable-rules driver: compiled once, state cleaned, errors surfaced, large protocols held."""

from __future__ import annotations

import dataclasses
import json

import durable_rules_engine as native
import pytest

import rules
from rules.compiler import compile_protocol
from rules.engine import DurableEngine
from rules.errors import EngineError, EngineLimitError
from rules.protocol import from_dict


def test_ruleset_is_created_once_per_version(compiled, subject):
    engine = DurableEngine()
    for _ in range(3):
        rules.decide(compiled, subject("SLE"), engine=engine)
    assert engine.loaded == 1


def test_subject_state_is_deleted_after_each_decision(compiled, subject):
    engine = DurableEngine()
    handle = engine.load(compiled)
    rules.decide(compiled, subject("SLE"), engine=engine)
    with pytest.raises(native.error):
        native.get_state(handle, "1")


def test_state_is_deleted_even_when_deciding_fails(compiled, subject, monkeypatch):
    engine = DurableEngine()
    handle = engine.load(compiled)

    def broken(*args):
        raise RuntimeError("formula failed")

    monkeypatch.setattr("rules.engine.compute", broken)
    with pytest.raises(RuntimeError, match="formula failed"):
        rules.decide(compiled, subject("SLE"), engine=engine)
    with pytest.raises(native.error):
        native.get_state(handle, "1")
    monkeypatch.undo()
    assert rules.decide(compiled, subject("SLE"), engine=engine).decision == "eligible"


def test_missing_outcome_is_an_error_not_a_pass(compiled, subject, monkeypatch):
    engine = DurableEngine()
    original = engine._act

    def drop_criterion(handle, compiled_, sid, name, current):
        return original(handle, compiled_, sid, name, current)

    monkeypatch.setattr(engine, "_act", drop_criterion)
    ruleset = json.loads(compiled.ruleset_json)
    ruleset.pop("IN-02:pass")
    crippled = rules.compile_protocol(rules.seed_protocol())
    crippled.ruleset = ruleset
    crippled.definition = from_dict({**crippled.definition.to_dict(), "version": "crippled"})
    with pytest.raises(EngineError, match="no outcome for criterion IN-02"):
        rules.decide(crippled, subject("SLE"), engine=engine)


def test_arithmetic_on_missing_fields_does_not_pass(compiled, subject):
    """The engine matches `alt <= alt_uln * 3` when alt_uln is absent; our guards must not."""
    decision = rules.decide(compiled, subject("SLE", {"alt": 30}))
    assert decision.outcome("IN-03d") == "unknown"


def test_a_protocol_with_hundreds_of_rules_is_held():
    variables = [{"name": f"v{i}", "type": "number", "unit": "g/L", "uln": True} for i in range(70)]
    criteria = [
        {"code": f"C{i}", "kind": "inclusion", "text": "t", "rule": f"v{i} <= 2 x ULN or v{(i + 1) % 70} >= 3 g/L"}
        for i in range(70)
    ]
    compiled = compile_protocol(
        from_dict(
            {
                "protocol": "BIG",
                "title": "t",
                "version": "1",
                "cohorts": [{"code": "A", "label": "A"}],
                "variables": variables,
                "criteria": criteria,
            }
        )
    )
    full = {"cohort": "A", "screening_date": "2026-11-02"}
    full.update({f"v{i}": {"value": 1, "unit": "g/L", "uln": 1} for i in range(70)})
    decision = rules.decide(compiled, full)
    assert decision.decision == "eligible"
    empty = rules.decide(compiled, {"cohort": "A", "screening_date": "2026-11-02"})
    assert empty.decision == "incomplete"


# -- the engine's limits, as the compiler enforces them ------------------------------------------


def _wide(variables: int) -> dict:
    """One yes/no variable and one criterion each: fields grow with the variables, nothing else."""
    return {
        "protocol": "WIDE",
        "title": "t",
        "version": "1",
        "variables": [{"name": f"v{i}", "type": "boolean"} for i in range(variables)],
        "criteria": [{"code": f"C{i}", "kind": "inclusion", "text": "t", "rule": f"v{i}"} for i in range(variables)],
    }


def test_a_protocol_at_the_engines_field_limit_decides():
    from rules.limits import LIMITS

    room = LIMITS.fact_properties - 3 - 1  # sid, id, t and the built-in screening date
    compiled = compile_protocol(from_dict(_wide(room)))
    subject = {"screening_date": "2026-11-02", **{f"v{i}": True for i in range(room)}}
    assert rules.decide(compiled, subject).decision == "eligible"
    assert rules.decide(compiled, {**subject, f"v{room - 1}": False}).decision == "not_eligible"


def test_one_field_past_the_engines_limit_is_refused_in_words():
    from rules.limits import LIMITS

    room = LIMITS.fact_properties - 3 - 1
    with pytest.raises(EngineLimitError) as refused:
        compile_protocol(from_dict(_wide(room + 1)))
    message = str(refused.value)
    assert f"the engine holds at most {LIMITS.fact_properties}" in message
    assert "Remove unused variables" in message


def test_a_protocol_past_the_engines_rule_limit_is_refused_in_words(monkeypatch):
    """The engine holds 65,536 rules; compiling that many takes minutes, so the limit is lowered here."""
    from rules import compiler
    from rules.limits import EngineLimits

    monkeypatch.setattr(compiler, "LIMITS", dataclasses.replace(compiler.LIMITS, rules=20))
    protocol = _wide(7)
    with pytest.raises(EngineLimitError, match="compiles to 21 engine rules, above the engine's limit of 20"):
        compile_protocol(from_dict(protocol))
    monkeypatch.setattr(compiler, "LIMITS", EngineLimits(**{**vars(compiler.LIMITS), "rules": 21}))
    assert len(compile_protocol(from_dict(protocol)).ruleset) == 21


def test_nesting_past_the_compilers_bound_is_refused_with_advice():
    from rules.compiler import MAX_NESTING

    rule = "v0"
    for level in range(1, MAX_NESTING + 1):
        rule = f"({rule} {'or' if level % 2 else 'and'} v{level % 7})"
    with pytest.raises(EngineLimitError, match="name a part of it as a condition variable"):
        compile_protocol(
            from_dict({**_wide(7), "criteria": [{"code": "C", "kind": "inclusion", "text": "t", "rule": rule}]})
        )
