"""The compiled form of a rule: canonical tests over fact fields, combined by Kleene logic.

Both backends read this tree: the durable-rules compiler turns it into engine
conditions, and `evaluate` is the plain-Python reference used by the tests and
as the benchmark floor. Keeping one tree for both is what makes their
agreement a meaningful property to test.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
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
