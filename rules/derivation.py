"""Compute derived fields: dictionary formulas and the first days of date windows.

The engine decides *when* a derived value can be computed (its `derive:` rule
fires once the inputs exist); this module does the arithmetic, for the engine
and for the reference evaluator alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.compiler import CompiledProtocol
from rules.formulas import window_start


def compute(compiled: CompiledProtocol, name: str, values: Mapping[str, Any]) -> Any:
    """The value of derived field `name` from `values`, or None if it cannot be computed."""
    variable = compiled.dictionary.variables.get(name)
    if variable is not None and variable.derivation is not None:
        return compiled.dictionary.derive(variable, values)
    for window in compiled.windows:
        if window.field == name:
            if window.reference not in values:
                return None
            return window_start(values[window.reference], window.amount, window.unit)
    raise KeyError(name)


def fields_at_stage(compiled: CompiledProtocol, stage: int) -> list[str]:
    """Derived fields first available at `stage`."""
    names = [v.name for v in compiled.dictionary.derived if v.derivation.level == stage]  # type: ignore[union-attr]
    return names + [w.field for w in compiled.windows if compiled.stage_of(w.field) == stage]


def derive_all(compiled: CompiledProtocol, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value, submitted and derived, as the engine's last stage sees it (reference path)."""
    result = dict(values)
    for stage in range(1, compiled.stages + 1):
        for name in fields_at_stage(compiled, stage):
            value = compute(compiled, name, result)
            if value is not None:
                result[name] = value
    return result
