"""Compute derived fields: dictionary formulas, date windows and scaled thresholds.

The engine decides *when* a derived value can be computed (its `derive:` rule
fires once the inputs exist); this module does the arithmetic, for the engine
and for the reference evaluator alike. What to compute for a field (which
formula, which kind of threshold, which source and amount) is looked up once
per version (`steps`); each subject then only runs the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rules import ir, lists, units
from rules.compiler import CompiledProtocol
from rules.formulas import window_start

Step = Callable[[Mapping[str, Any]], Any]  # a derived field's value from the values so far, or None


def compute(compiled: CompiledProtocol, name: str, values: Mapping[str, Any]) -> Any:
    """The value of derived field `name` from `values`, or None if it cannot be computed."""
    return step(compiled, name)(values)


def step(compiled: CompiledProtocol, name: str) -> Step:
    """How to compute derived field `name`, decided once per version (KeyError: no such field)."""
    found: dict[str, Step] = compiled.once("derivation.steps", dict)
    work = found.get(name)
    if work is None:
        work = found[name] = _step(compiled, name)
    return work


def _step(compiled: CompiledProtocol, name: str) -> Step:
    dictionary = compiled.dictionary
    variable = dictionary.variables.get(name)
    if variable is not None and variable.derivation is not None:
        return lambda values: dictionary.derive(variable, values)
    extra = compiled.computed_field(name)
    if extra is None:
        raise KeyError(name)
    source = extra.source
    if extra.kind == "list":
        value_set, window, part = dictionary.value_sets[extra.value_set], extra.window, extra.part

        def count(values: Mapping[str, Any]) -> Any:
            if source not in values:
                return None
            return lists.count(part, values[source], value_set, window, values.get(window.reference))

        return count
    of_source = threshold(compiled, name)
    return lambda values: of_source(values[source]) if source in values else None


_UNSEEN = object()
MEMO_SIZE = 4096  # source values remembered per threshold


def threshold(compiled: CompiledProtocol, name: str) -> Callable[[Any], Any]:
    """A computed threshold (a window's first day, a multiple of a limit of normal) from its source's
    value, remembered per value once per version.

    The sources repeat: a subject's limits of normal are its laboratory's (a few values per site)
    and screening dates are the days screened, while the arithmetic (`window_start`'s calendar,
    `units.tidy`'s formatting) costs a few hundred ns a field for every subject. Zero is not
    remembered, so -0.0 keeps its own result."""
    found: dict[str, Callable[[Any], Any]] = compiled.once("derivation.thresholds", dict)
    work = found.get(name)
    if work is None:
        work = found[name] = _remembered(_arithmetic(compiled, name))
    return work


def _arithmetic(compiled: CompiledProtocol, name: str) -> Callable[[Any], Any]:
    extra = compiled.computed_field(name)
    if extra is None or extra.kind not in ("window", "scale"):
        raise KeyError(name)
    amount, unit = extra.amount, extra.unit
    if extra.kind == "window":
        return lambda day: window_start(day, amount, unit)
    return lambda value: units.tidy(value * amount)


def _remembered(work: Callable[[Any], Any]) -> Callable[[Any], Any]:
    seen: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        result = seen.get(value, _UNSEEN) if value else _UNSEEN
        if result is _UNSEEN:
            result = work(value)
            if value and len(seen) < MEMO_SIZE:
                seen[value] = result
        return result

    return remembered


def fields_at_stage(compiled: CompiledProtocol, stage: int) -> list[str]:
    """Derived fields first available at `stage`."""
    names = [v.name for v in compiled.dictionary.derived if v.derivation.level == stage]  # type: ignore[union-attr]
    return names + [f.field for f in compiled.computed if compiled.stage_of(f.field) == stage]


def _plan(compiled: CompiledProtocol) -> tuple[tuple[tuple[str, Step], ...], tuple[tuple[str, ir.Check], ...]]:
    """Every derived field in the order the stages make them available, then each named condition
    (in the order they are decided) as closures: built once per version."""
    return compiled.once("derivation.plan", lambda: _build_plan(compiled))


def _build_plan(compiled: CompiledProtocol) -> tuple[tuple[tuple[str, Step], ...], tuple[tuple[str, ir.Check], ...]]:
    steps = tuple(
        (name, step(compiled, name))
        for stage in range(0, compiled.derivation_stages + 1)
        for name in fields_at_stage(compiled, stage)
    )
    named = tuple((name, ir.compile_node(condition.rule.ir)) for name, condition in compiled.conditions.items())
    return steps, named


def derive_all(compiled: CompiledProtocol, values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value, submitted and derived, as the engine's last stage sees it (reference path).

    Named conditions are read straight from their rules here; sub-condition fields, which only
    the engine needs, are left out."""
    steps, named = _plan(compiled)
    result = dict(values)
    for name, work in steps:
        value = work(result)
        if value is not None:
            result[name] = value
    for name, check in named:
        truth = check(result)
        if truth is not None:
            result[name] = truth
    return result
