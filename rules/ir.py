"""The compiled form of a rule: canonical tests over fact fields, combined by Kleene logic.

Both backends read this tree: the durable-rules compiler turns it into engine
conditions, and `evaluate` is the plain-Python reference used by the tests and
as the benchmark floor. Keeping one tree for both is what makes their
agreement a meaningful property to test. `compile_node` turns a tree into
closures once, for the reference's speed; `evaluate` stays the definition it
must equal (tests/rules/test_reference_compiled.py).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Truth3 = bool | None  # None: unknown, because data is missing

_COMPARE = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
NEGATED = {">=": "<", "<": ">=", "<=": ">", ">": "<=", "==": "!=", "!=": "=="}


@dataclass(frozen=True)
class Test:
    """`field op value`, or `field op other` when the operand is another (possibly computed) field."""

    field: str
    op: str
    value: float | str | bool | None = None
    other: str | None = None
    basis: str | None = None  # the field a computed threshold rests on (alt_uln for `3 x ULN`)
    shown: str = ""  # the operand as the writer wrote it, for explanations ("1 x10^9/L", "3 x ULN")

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field, self.other) if self.other else (self.field,)

    def operand(self, values: Mapping[str, Any]) -> Any:
        return self.value if self.other is None else values[self.other]


@dataclass(frozen=True)
class Group:
    """A combination of nodes. `op` is the logic; `style` is how the writer said it, for explanations."""

    op: str  # all, any, not, at_least
    items: tuple[Node, ...]
    count: int = 0  # for at_least
    style: str = ""  # and, or, not, unless, implies, between, within, in, at_least


Node = Test | Group


def evaluate(node: Node, values: Mapping[str, Any]) -> Truth3:
    """Three-valued (Kleene) truth of a node: a definite answer wins over missing data."""
    if isinstance(node, Test):
        if any(field not in values for field in node.fields):
            return None
        return bool(_COMPARE[node.op](values[node.field], node.operand(values)))
    results = [evaluate(item, values) for item in node.items]
    return combine(node, results)


def combine(node: Group, results: list[Truth3]) -> Truth3:
    if node.op == "not":
        return None if results[0] is None else not results[0]
    if node.op == "all":
        if False in results:
            return False
        return None if None in results else True
    if node.op == "any":
        if True in results:
            return True
        return None if None in results else False
    true = sum(1 for r in results if r is True)
    unknown = sum(1 for r in results if r is None)
    if true >= node.count:
        return True
    if true + unknown < node.count:
        return False
    return None


def fields_of(node: Node) -> set[str]:
    if isinstance(node, Test):
        return set(node.fields)
    found: set[str] = set()
    for item in node.items:
        found |= fields_of(item)
    return found


def depth(node: Node) -> int:
    if isinstance(node, Test):
        return 1
    return 1 + max(depth(item) for item in node.items)


Check = Callable[[Mapping[str, Any]], Truth3]


def compile_node(node: Node) -> Check:
    """The node as plain Python closures: the same three-valued truth as `evaluate`, with the tree's
    walking, type tests and operator lookups done once instead of for every subject.

    Evaluation stops at the first item that decides a group (a false item of an `all`, a true one of
    an `any`, the k-th true one of an `at least k`): Kleene logic makes the rest irrelevant, and
    tests have no side effects, so the answer is `combine`'s."""
    if isinstance(node, Test):
        return _compile_test(node)
    items = tuple(compile_node(item) for item in node.items)
    if node.op == "not":
        return _negation(items[0])
    if node.op == "all":
        return _conjunction(items)
    if node.op == "any":
        return _disjunction(items)
    return _at_least(items, node.count)


def _compile_test(node: Test) -> Check:
    field = node.field
    compare: Callable[[Any, Any], Any] = _COMPARE[node.op]
    if node.other is None:
        value = node.value

        def test(values: Mapping[str, Any]) -> Truth3:
            if field in values:
                return bool(compare(values[field], value))
            return None

        return test
    other = node.other

    def test_fields(values: Mapping[str, Any]) -> Truth3:
        if field in values and other in values:
            return bool(compare(values[field], values[other]))
        return None

    return test_fields


def _negation(item: Check) -> Check:
    def negation(values: Mapping[str, Any]) -> Truth3:
        truth = item(values)
        return None if truth is None else not truth

    return negation


def _conjunction(items: tuple[Check, ...]) -> Check:
    if len(items) == 2:
        first, second = items

        def both(values: Mapping[str, Any]) -> Truth3:
            a = first(values)
            if a is False:
                return False
            b = second(values)
            if b is False:
                return False
            return True if a and b else None

        return both

    def conjunction(values: Mapping[str, Any]) -> Truth3:
        known = True
        for item in items:
            truth = item(values)
            if truth is False:
                return False
            if truth is None:
                known = False
        return True if known else None

    return conjunction


def _disjunction(items: tuple[Check, ...]) -> Check:
    if len(items) == 2:
        first, second = items

        def either(values: Mapping[str, Any]) -> Truth3:
            a = first(values)
            if a:
                return True
            b = second(values)
            if b:
                return True
            return False if a is False and b is False else None

        return either

    def disjunction(values: Mapping[str, Any]) -> Truth3:
        known = True
        for item in items:
            truth = item(values)
            if truth:
                return True
            if truth is None:
                known = False
        return False if known else None

    return disjunction


def _at_least(items: tuple[Check, ...], count: int) -> Check:
    def at_least(values: Mapping[str, Any]) -> Truth3:
        true = unknown = 0
        for item in items:
            truth = item(values)
            if truth:
                true += 1
                if true >= count:
                    return True
            elif truth is None:
                unknown += 1
        if true >= count:  # `at least 0 of`: holds with no item true
            return True
        return False if true + unknown < count else None

    return at_least
