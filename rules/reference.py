"""The plain-Python reference evaluator of the same compiled rules.

Not the production path: the engine decides. This exists so tests can check
the engine against an independent reading of the same IR on any subject, and
so benchmarks have a floor to compare the engine's cost with. It reads the IR
only (compiled once per version into closures by `ir.compile_node`), never the
engine's ruleset, stages or sub-conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules import ir
from rules.compiler import CompiledProtocol
from rules.derivation import derive_all
from rules.engine import Evaluation

_NAMES = {
    "inclusion": {True: "pass", False: "fail", None: "unknown"},
    "exclusion": {True: "fail", False: "pass", None: "unknown"},
}

# Per criterion: code, its cohorts (None: all), its condition as closures, the outcome of each truth.
Plan = tuple[tuple[str, tuple[str, ...] | None, ir.Check, dict[ir.Truth3, str]], ...]


def outcome_of(kind: str, truth: ir.Truth3) -> str:
    """An inclusion passes when its condition holds; an exclusion when it does not."""
    if truth is None:
        return "unknown"
    return "pass" if truth == (kind == "inclusion") else "fail"


def plan(compiled: CompiledProtocol) -> Plan:
    """Each criterion's condition compiled once per version (cached on the compiled protocol)."""
    return compiled.once(
        "reference.plan",
        lambda: tuple(
            (c.code, c.definition.cohorts or None, ir.compile_node(c.ir), _NAMES[c.kind]) for c in compiled.criteria
        ),
    )


def evaluate(compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation:
    final = derive_all(compiled, values)
    cohort = final.get("cohort")
    outcomes = {
        code: names[check(final)] if cohorts is None or cohort in cohorts else "not_applicable"
        for code, cohorts, check, names in plan(compiled)
    }
    return Evaluation(final, outcomes, [])
