"""Compute derived fields: dictionary formulas, date windows and scaled thresholds.

The engine decides *when* a derived value can be computed (its `derive:` rule
fires once the inputs exist); this module does the arithmetic, for the engine
and for the reference evaluator alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules import ir, lists, units
from rules.compiler import CompiledProtocol
from rules.formulas import window_start


def compute(compiled: CompiledProtocol, name: str, values: Mapping[str, Any]) -> Any:
    """The value of derived field `name` from `values`, or None if it cannot be computed."""
    variable = compiled.dictionary.variables.get(name)
    if variable is not None and variable.derivation is not None:
        return compiled.dictionary.derive(variable, values)
    extra = compiled.computed_field(name)
    if extra is None:
        raise KeyError(name)
    if extra.source not in values:
        return None
    if extra.kind == "list":
        value_set = compiled.dictionary.value_sets[extra.value_set]
        reference = values.get(extra.window.reference)
        return lists.count(extra.part, values[extra.source], value_set, extra.window, reference)
    if extra.kind == "window":
        return window_start(values[extra.source], extra.amount, extra.unit)
    return units.tidy(values[extra.source] * extra.amount)


def fields_at_stage(compiled: CompiledProtocol, stage: int) -> list[str]:
    """Derived fields first available at `stage`."""
    names = [v.name for v in compiled.dictionary.derived if v.derivation.level == stage]  # type: ignore[union-attr]
    return names + [f.field for f in compiled.computed if compiled.stage_of(f.field) == stage]


def derive_all(compiled: CompiledProtocol, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value, submitted and derived, as the engine's last stage sees it (reference path).

    Named conditions are read straight from their rules here; sub-condition fields, which only
    the engine needs, are left out."""
    result = dict(values)
    for stage in range(0, compiled.derivation_stages + 1):
        for name in fields_at_stage(compiled, stage):
            value = compute(compiled, name, result)
            if value is not None:
                result[name] = value
    for name, condition in compiled.conditions.items():
        truth = ir.evaluate(condition.rule.ir, result)
        if truth is not None:
            result[name] = truth
    return result
