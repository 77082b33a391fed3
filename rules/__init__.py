"""Eligo's rules core: the criterion language, the durable-rules compiler and explained decisions.

It knows nothing of Flask or databases: it takes a protocol definition (plain
data) and a subject, and returns a decision.

    protocol = rules.load_protocol("NCT07193667.yaml")
    compiled = rules.compile_protocol(protocol)
    decision = rules.decide(compiled, {"cohort": "SLE", "screening_date": "2026-11-02", ...})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any, Protocol

from rules import reference
from rules.compiler import CompiledProtocol, compile_protocol
from rules.decision import Decision, combine
from rules.engine import Evaluation, default_engine
from rules.errors import SubjectInputErrors
from rules.explain import explain
from rules.protocol import ProtocolDef
from rules.protocol import dumps as dump_protocol
from rules.protocol import load as load_protocol
from rules.protocol import loads as loads_protocol

SEED_PROTOCOL = "NCT07193667"

__all__ = [
    "SEED_PROTOCOL",
    "CompiledProtocol",
    "Decision",
    "ProtocolDef",
    "compile_protocol",
    "decide",
    "decide_reference",
    "dump_protocol",
    "load_protocol",
    "loads_protocol",
    "outcomes",
    "outcomes_many",
    "seed_protocol",
]


class Evaluator(Protocol):
    """What runs compiled rules: the in-process engine, or the isolated one (rules.isolation)."""

    def evaluate(self, compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation: ...


class BatchEvaluator(Evaluator, Protocol):
    def evaluate_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Evaluation]: ...


def seed_protocol() -> ProtocolDef:
    """NCT07193667, as shipped with the package."""
    return loads_protocol(files("rules").joinpath(f"protocols/{SEED_PROTOCOL}.yaml").read_text(encoding="utf-8"))


def decide(compiled: CompiledProtocol, subject: Mapping[str, Any], engine: Evaluator | None = None) -> Decision:
    """Decide one subject with the durable-rules engine; bad input raises SubjectInputErrors."""
    normalized = compiled.dictionary.normalize(subject)
    evaluation = (engine or default_engine()).evaluate(compiled, normalized.values)
    return explain(compiled, normalized, evaluation)


def outcomes(
    compiled: CompiledProtocol, subject: Mapping[str, Any], engine: Evaluator | None = None
) -> tuple[str, dict[str, str]]:
    """The decision and each criterion's outcome, without the explanation: for replaying many subjects."""
    normalized = compiled.dictionary.normalize(subject)
    evaluation = (engine or default_engine()).evaluate(compiled, normalized.values)
    return combine(list(evaluation.outcomes.values())), evaluation.outcomes


def outcomes_many(
    compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]], engine: BatchEvaluator
) -> list[tuple[str, dict[str, str]] | SubjectInputErrors]:
    """`outcomes` for many subjects in one engine call; a subject with bad input gets its errors instead.

    An engine that can normalise subjects itself (the isolated engine and its pool) is handed the
    raw subjects: the unit conversions then run in its processes, on every core, not in this one.
    """
    delegate = getattr(engine, "outcomes_many", None)
    if delegate is not None:
        return delegate(compiled, subjects)
    results: list[tuple[str, dict[str, str]] | SubjectInputErrors] = []
    usable: list[int] = []
    values: list[dict[str, Any]] = []
    for subject in subjects:
        try:
            values.append(compiled.dictionary.normalize(subject).values)
        except SubjectInputErrors as errors:
            results.append(errors)
        else:
            usable.append(len(results))
            results.append(("", {}))
    for index, evaluation in zip(usable, engine.evaluate_many(compiled, values), strict=True):
        results[index] = (combine(list(evaluation.outcomes.values())), evaluation.outcomes)
    return results


def decide_reference(compiled: CompiledProtocol, subject: Mapping[str, Any]) -> Decision:
    """The same decision by the plain-Python reference evaluator: for tests and benchmarks only."""
    normalized = compiled.dictionary.normalize(subject)
    return explain(compiled, normalized, reference.evaluate(compiled, normalized.values))
