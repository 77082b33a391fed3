"""The typed expression tree of a derived variable's formula, and its interpreter.

Formulas are data written by protocol writers, so they are never run as code:
rules/formula_check.py checks a parsed formula's types and units and lowers it
to these nodes, with every unit conversion already folded into a factor, and
this module walks them. A value that cannot be had (an input missing, a
division by zero, the logarithm of zero, an overflow) makes the whole formula
have no value, so the derived variable stays unknown instead of crashing a
decision.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class Undefined(Exception):
    """The formula has no value for these inputs."""


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise Undefined("not a finite number")
    return value


def _power(base: float, exponent: float) -> float:
    return math.pow(base, exponent)  # ValueError for (-8) ^ 0.5 where ** would give a complex number


OPERATORS: dict[str, Callable[..., Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": _power,
    "neg": operator.neg,
    "min": min,
    "max": max,
    "abs": abs,
    "sqrt": math.sqrt,
    "ln": math.log,
    "log10": math.log10,
    "exp": math.exp,
}
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Constant:
    value: float | bool | str

    def run(self, values: Mapping[str, Any]) -> Any:
        return self.value

    def reads(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True)
class Read:
    """A variable's value, times `factor` to bring it from its canonical unit to the one the formula uses."""

    name: str
    factor: float = 1.0

    def run(self, values: Mapping[str, Any]) -> Any:
        if self.name not in values:
            raise Undefined(f"{self.name} is missing")
        value = values[self.name]
        return value * self.factor if self.factor != 1.0 else value

    def reads(self) -> frozenset[str]:
        return frozenset({self.name})


@dataclass(frozen=True)
class Apply:
    """An operator of OPERATORS on its operands: `+`, `^`, `min`, `ln`…"""

    operator: str
    operands: tuple[Expr, ...]

    def run(self, values: Mapping[str, Any]) -> Any:
        return _finite(OPERATORS[self.operator](*(o.run(values) for o in self.operands)))

    def reads(self) -> frozenset[str]:
        return frozenset().union(*(o.reads() for o in self.operands))


@dataclass(frozen=True)
class Call:
    """A named built-in function of rules/formulas.py, its arguments already in the units it computes in."""

    name: str
    compute: Callable[..., Any]
    arguments: tuple[Expr, ...]

    def run(self, values: Mapping[str, Any]) -> Any:
        return _finite(self.compute(*(a.run(values) for a in self.arguments)))

    def reads(self) -> frozenset[str]:
        return frozenset().union(*(a.reads() for a in self.arguments))


@dataclass(frozen=True)
class IsCode:
    name: str
    codes: frozenset[str]
    negated: bool = False

    def run(self, values: Mapping[str, Any]) -> bool:
        if self.name not in values:
            raise Undefined(f"{self.name} is missing")
        return (values[self.name] in self.codes) != self.negated

    def reads(self) -> frozenset[str]:
        return frozenset({self.name})


@dataclass(frozen=True)
class Compare:
    operator: str
    left: Expr
    right: Expr

    def run(self, values: Mapping[str, Any]) -> bool:
        return COMPARISONS[self.operator](self.left.run(values), self.right.run(values))

    def reads(self) -> frozenset[str]:
        return self.left.reads() | self.right.reads()


@dataclass(frozen=True)
class Logic:
    """`and`, `or` (short-circuit, like Python) and `not` over conditions; a boolean variable is a Read."""

    operator: str
    operands: tuple[Expr, ...]

    def run(self, values: Mapping[str, Any]) -> bool:
        if self.operator == "not":
            return not self.operands[0].run(values)
        if self.operator == "and":
            return all(o.run(values) for o in self.operands)
        return any(o.run(values) for o in self.operands)

    def reads(self) -> frozenset[str]:
        return frozenset().union(*(o.reads() for o in self.operands))


@dataclass(frozen=True)
class Branch:
    condition: Expr
    then: Expr
    otherwise: Expr

    def run(self, values: Mapping[str, Any]) -> Any:
        return self.then.run(values) if self.condition.run(values) else self.otherwise.run(values)

    def reads(self) -> frozenset[str]:
        """Every variable either branch may read: the engine waits for all of them (conservative)."""
        return self.condition.reads() | self.then.reads() | self.otherwise.reads()


Expr = Constant | Read | Apply | Call | IsCode | Compare | Logic | Branch

# Built-ins that measure the time from their first date to their second.
TIME_SINCE = frozenset({"age", "completed_days", "completed_months", "completed_years", "days_between"})


def counted_back_from(expr: Expr, reference: str = "screening_date") -> frozenset[str]:
    """The dates a formula measures back from `reference` (`age(date_of_birth)`, `completed_months(start,
    screening_date)`, `screening_date - start`): such a date after the reference is a typo, not a time."""
    found: set[str] = set()
    pending: list[Expr] = [expr]
    while pending:
        node = pending.pop()
        pair: tuple[Expr, ...] = ()
        if isinstance(node, Call) and node.name in TIME_SINCE and len(node.arguments) == 2:
            pair = (node.arguments[1], node.arguments[0])
        elif isinstance(node, Apply) and node.operator == "-" and len(node.operands) == 2:
            pair = node.operands
        if pair and isinstance(pair[0], Read) and pair[0].name == reference and isinstance(pair[1], Read):
            found.add(pair[1].name)
        for child in (getattr(node, "arguments", ()), getattr(node, "operands", ())):
            pending.extend(child)
        if isinstance(node, Branch):
            pending.extend((node.condition, node.then, node.otherwise))
    return frozenset(found)


def evaluate(expr: Expr, values: Mapping[str, Any]) -> Any | None:
    """The formula's value on canonical `values`, or None when it has none (missing input, ÷ 0, ln 0…)."""
    return run_closure(closure(expr), values)


def run_closure(built: Closure, values: Mapping[str, Any]) -> Any | None:
    """`evaluate` for a closure built once (a derived variable keeps its own)."""
    try:
        return built(values)
    except (Undefined, ArithmeticError, ValueError):
        return None


Closure = Callable[[Mapping[str, Any]], Any]


def closure(expr: Expr) -> Closure:
    """The tree as nested Python closures, built once per formula: the same semantics as `run`
    (missing input raises Undefined, non-finite results too), without walking the tree per subject.
    Formulas are evaluated for every subject decided; no text is ever executed."""
    if isinstance(expr, Constant):
        value = expr.value
        return lambda values: value
    if isinstance(expr, Read):
        name, factor = expr.name, expr.factor

        def read(values: Mapping[str, Any]) -> Any:
            try:
                value = values[name]
            except KeyError:
                raise Undefined(f"{name} is missing") from None
            return value * factor if factor != 1.0 else value

        return read
    if isinstance(expr, Apply | Call):
        function = OPERATORS[expr.operator] if isinstance(expr, Apply) else expr.compute
        parts = tuple(closure(o) for o in (expr.operands if isinstance(expr, Apply) else expr.arguments))
        if len(parts) == 1:
            (only,) = parts
            return lambda values: _finite(function(only(values)))
        if len(parts) == 2:
            first, second = parts
            return lambda values: _finite(function(first(values), second(values)))
        return lambda values: _finite(function(*[part(values) for part in parts]))
    if isinstance(expr, Compare):
        compare, left, right = COMPARISONS[expr.operator], closure(expr.left), closure(expr.right)
        return lambda values: compare(left(values), right(values))
    if isinstance(expr, Branch):
        condition, then, otherwise = closure(expr.condition), closure(expr.then), closure(expr.otherwise)
        return lambda values: then(values) if condition(values) else otherwise(values)
    return expr.run  # IsCode and Logic: already one step
