"""The plain-Python reference evaluator of the same compiled rules.

Not the production path: the engine decides. This exists so tests can check
the engine against an independent reading of the same IR on any subject, and
so benchmarks have a floor to compare the engine's cost with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules import ir
from rules.compiler import CompiledProtocol
from rules.derivation import derive_all
from rules.engine import Evaluation


def outcome_of(kind: str, truth: ir.Truth3) -> str:
    """An inclusion passes when its condition holds; an exclusion when it does not."""
    if truth is None:
        return "unknown"
    return "pass" if truth == (kind == "inclusion") else "fail"


def evaluate(compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation:
    final = derive_all(compiled, values)
    cohort = final.get("cohort")
    outcomes = {
        c.code: outcome_of(c.kind, ir.evaluate(c.ir, final)) if c.applies_to(cohort) else "not_applicable"
        for c in compiled.criteria
    }
    return Evaluation(final, outcomes, [])
