"""The reference evaluator compiled to closures reads the IR exactly as `ir.evaluate` does.

`ir.compile_node` turns each criterion and named condition into closures once per version, and
`derivation.derive_all` runs a plan built once; both exist for speed only. These properties hold
them to the tree walk they replace: on generated trees, on every condition of the seed and of the
example protocols with values on and around each threshold, and on whole subjects (the final
values and every outcome), so the reference stays the independent check of the engine it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from rules import derivation, ir, lists, reference, units
from rules.compiler import CompiledProtocol
from rules.derivation import fields_at_stage
from rules.errors import SubjectInputErrors
from rules.formulas import window_start

EXAMPLES = files("rules").joinpath("protocols/examples")
PROTOCOLS = ["seed", *sorted(p.name.removesuffix(".yaml") for p in EXAMPLES.iterdir() if p.name.endswith(".yaml"))]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRUTHS = (True, False, None)


def _compiled(name: str) -> CompiledProtocol:
    if name == "seed":
        return rules.compile_protocol(rules.seed_protocol())
    return rules.compile_protocol(rules.loads_protocol(EXAMPLES.joinpath(f"{name}.yaml").read_text(encoding="utf-8")))


@pytest.fixture(scope="module", params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> CompiledProtocol:
    return _compiled(request.param)


def _same(a: ir.Truth3, b: ir.Truth3) -> bool:
    """Equal and of the same kind: True is not 1, None is not False."""
    return a is b


# -- generated trees ---------------------------------------------------------------------------

FIELDS = ("a", "b", "c", "d")
OPS = tuple(ir.NEGATED)


def _tests() -> st.SearchStrategy[ir.Node]:
    constant = st.builds(ir.Test, st.sampled_from(FIELDS), st.sampled_from(OPS), st.integers(0, 3))
    other = st.builds(
        lambda field, op, other: ir.Test(field, op, other=other),
        st.sampled_from(FIELDS),
        st.sampled_from(OPS),
        st.sampled_from(FIELDS),
    )
    return st.one_of(constant, other)


def _groups(children: st.SearchStrategy[ir.Node]) -> st.SearchStrategy[ir.Node]:
    @st.composite
    def group(draw: st.DrawFn) -> ir.Node:
        op = draw(st.sampled_from(["all", "any", "not", "at_least"]))
        items = tuple(draw(st.lists(children, min_size=1, max_size=1 if op == "not" else 5)))
        count = draw(st.integers(0, len(items) + 1)) if op == "at_least" else 0
        return ir.Group(op, items, count)

    return group()


TREES = st.recursive(_tests(), _groups, max_leaves=12)
VALUES = st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 3))


@settings(max_examples=400)
@given(TREES, VALUES)
def test_a_compiled_tree_gives_what_the_tree_walk_gives(tree, values):
    assert _same(ir.compile_node(tree)(values), ir.evaluate(tree, values))


@given(st.lists(st.sampled_from(TRUTHS), min_size=1, max_size=7), st.integers(0, 8))
def test_at_least_k_compiled_follows_kleene(truths, k):
    items = tuple(ir.Test(f"v{i}", "==", True) for i in range(len(truths)))
    values = {f"v{i}": truth for i, truth in enumerate(truths) if truth is not None}
    node = ir.Group("at_least", items, count=k)
    true, unknown = truths.count(True), truths.count(None)
    expected = True if true >= k else False if true + unknown < k else None
    assert _same(ir.compile_node(node)(values), expected)
    assert _same(ir.evaluate(node, values), expected)


# -- every condition of the real protocols -------------------------------------------------------

NUMBERS = (0, 0.5, 1, 2.5, 3, 10, 100, 739_000, 739_922)  # field-to-field comparisons: amounts and day ordinals


def _conditions(compiled: CompiledProtocol) -> list[tuple[str, ir.Node]]:
    return [(c.code, c.ir) for c in compiled.criteria] + [(n, c.rule.ir) for n, c in compiled.conditions.items()]


def _candidates(compiled: CompiledProtocol) -> dict[str, list[Any]]:
    """For each field a condition reads, values on and beside every threshold it is compared with."""
    found: dict[str, set[Any]] = {}

    def walk(node: ir.Node) -> None:
        if isinstance(node, ir.Group):
            for item in node.items:
                walk(item)
            return
        pool = found.setdefault(node.field, set())
        if node.other is not None:
            pool.update(NUMBERS)
            found.setdefault(node.other, set()).update(NUMBERS)
        elif isinstance(node.value, bool):
            pool.update((True, False))
        elif isinstance(node.value, int | float):
            pool.update((node.value, node.value - 1, node.value + 1, node.value - 0.01, node.value + 0.01))
        else:
            pool.update((node.value, "something else"))

    for _, node in _conditions(compiled):
        walk(node)
    return {name: sorted(pool, key=repr) for name, pool in found.items()}


def test_every_condition_compiled_gives_what_the_tree_walk_gives(protocol):
    candidates = _candidates(protocol)
    conditions = [(name, node, ir.compile_node(node)) for name, node in _conditions(protocol)]

    @FAST
    @given(st.fixed_dictionaries({}, optional={name: st.sampled_from(pool) for name, pool in candidates.items()}))
    def check(values: dict[str, Any]) -> None:
        for name, node, compiled_check in conditions:
            assert _same(compiled_check(values), ir.evaluate(node, values)), name

    check()


# -- whole subjects: final values and outcomes ---------------------------------------------------


def _compute(compiled: CompiledProtocol, name: str, values: Mapping[str, Any]) -> Any:
    """A derived field looked up and computed from scratch, as derivation did before its plan."""
    variable = compiled.dictionary.variables.get(name)
    if variable is not None and variable.derivation is not None:
        return compiled.dictionary.derive(variable, values)
    extra = compiled.computed_field(name)
    assert extra is not None
    if extra.source not in values:
        return None
    if extra.kind == "list":
        value_set = compiled.dictionary.value_sets[extra.value_set]
        return lists.count(
            extra.part, values[extra.source], value_set, extra.window, values.get(extra.window.reference)
        )
    if extra.kind == "window":
        return window_start(values[extra.source], extra.amount, extra.unit)
    return units.tidy(values[extra.source] * extra.amount)


def _walked(compiled: CompiledProtocol, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The reference as a plain tree walk: every lookup and every node visited per subject."""
    final = dict(values)
    for stage in range(compiled.derivation_stages + 1):
        for name in fields_at_stage(compiled, stage):
            value = _compute(compiled, name, final)
            if value is not None:
                final[name] = value
    for name, condition in compiled.conditions.items():
        truth = ir.evaluate(condition.rule.ir, final)
        if truth is not None:
            final[name] = truth
    cohort = final.get("cohort")
    outcomes = {
        c.code: reference.outcome_of(c.kind, ir.evaluate(c.ir, final)) if c.applies_to(cohort) else "not_applicable"
        for c in compiled.criteria
    }
    return final, outcomes


def test_every_subject_gets_the_tree_walks_values_and_outcomes(protocol):
    cases = [dict(case.subject) for case in protocol.definition.test_cases]
    assert cases, "each protocol ships test cases to start from"
    kept = ("cohort", "screening_date")

    @FAST
    @given(st.sampled_from(cases), st.data())
    def check(case: dict[str, Any], data: st.DataObject) -> None:
        dropped = data.draw(st.sets(st.sampled_from(sorted(k for k in case if k not in kept))))
        subject = {k: v for k, v in case.items() if k not in dropped}
        try:
            values = protocol.dictionary.normalize(subject).values
        except SubjectInputErrors:  # a test case that expects its input refused
            return
        evaluation = reference.evaluate(protocol, values)
        final, outcomes = _walked(protocol, values)
        assert evaluation.values == final
        assert list(evaluation.values) == list(final)  # the same order, for explanations
        assert evaluation.outcomes == outcomes
        assert list(evaluation.outcomes) == [c.code for c in protocol.criteria]

    check()


def test_the_plan_is_built_once_per_version():
    compiled = _compiled("seed")
    subject = compiled.definition.test_cases[0].subject
    values = compiled.dictionary.normalize(subject).values
    reference.evaluate(compiled, values)
    plan = reference.plan(compiled)
    reference.evaluate(compiled, values)
    assert reference.plan(compiled) is plan
    assert len(plan) == len(compiled.criteria)


SEED = _compiled("seed")


@FAST
@given(st.lists(st.one_of(st.integers(700_000, 750_000), st.floats(-1e6, 1e6, allow_nan=False)), max_size=30))
def test_a_remembered_threshold_is_the_arithmetic_done_afresh(sources):
    compiled = SEED
    for extra in compiled.computed:
        of_source = derivation.threshold(compiled, extra.field)
        for value in [*sources, 0.0, -0.0, *sources]:  # the second time from memory
            if extra.kind == "window" and not isinstance(value, int):
                continue
            fresh = _compute(compiled, extra.field, {extra.source: value})
            remembered = of_source(value)
            assert remembered == fresh and type(remembered) is type(fresh)
            assert repr(remembered) == repr(fresh)  # -0.0 stays -0.0


def test_the_threshold_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(derivation, "MEMO_SIZE", 3)
    compiled = _compiled("seed")
    scaled = next(c for c in compiled.computed if c.kind == "scale")
    of_source = derivation.threshold(compiled, scaled.field)
    for value in range(1, 20):
        assert of_source(float(value)) == units.tidy(value * scaled.amount)
    remembered = of_source.__closure__  # the memo is the closure's dict
    assert remembered is not None
    memo = next(cell.cell_contents for cell in remembered if isinstance(cell.cell_contents, dict))
    assert len(memo) == 3
