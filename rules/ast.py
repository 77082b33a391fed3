"""Typed syntax tree of the criterion language, with positions for every node.

Nodes are frozen dataclasses so a parsed rule can be cached and shared, and
every node keeps where it came from so validation errors point at the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.errors import Position


@dataclass(frozen=True)
class Node:
    position: Position


@dataclass(frozen=True)
class Quantity(Node):
    value: float
    unit: str | None


@dataclass(frozen=True)
class UlnMultiple(Node):
    """`3 x ULN`: a multiple of the subject's own upper limit of normal for the variable."""

    factor: float


@dataclass(frozen=True)
class LlnMultiple(Node):
    """`1 x LLN`: a multiple of the subject's own lower limit of normal for the variable."""

    factor: float


@dataclass(frozen=True)
class VariableRef(Node):
    name: str


@dataclass(frozen=True)
class Truth(Node):
    """A boolean variable named on its own: true when the variable is true."""

    variable: VariableRef


@dataclass(frozen=True)
class Comparison(Node):
    variable: VariableRef
    operator: str
    operand: Quantity | UlnMultiple | LlnMultiple | VariableRef


@dataclass(frozen=True)
class Between(Node):
    """Inclusive range: `age between 18 and 65 years`."""

    variable: VariableRef
    low: Quantity
    high: Quantity


@dataclass(frozen=True)
class Within(Node):
    """A date placed in time against another: `d within 14 days before screening` (in [ref - 14, ref]),
    `d at least 3 months before screening` (on or before ref - 3 months), `more than` (strictly before
    it), `less than` (after it, up to ref); `after` mirrors each."""

    variable: VariableRef
    span: Quantity
    reference: VariableRef
    negated: bool
    relation: str = "within"  # within, at_least, more_than, less_than
    direction: str = "before"  # before, after


@dataclass(frozen=True)
class Membership(Node):
    variable: VariableRef
    codes: tuple[str, ...]
    negated: bool


@dataclass(frozen=True)
class ListWindow(Node):
    """`within 8 weeks before screening`, or `within 5 half-lives` (span None, half_lives set)."""

    span: Quantity | None
    reference: VariableRef
    half_lives: float | None = None
    direction: str = "before"  # histories count back; `after` is refused by the checker


@dataclass(frozen=True)
class ListTest(Node):
    """`any|no <list> in <value set> [window]`, `count of … >= n`, `last dose of … within N half-lives`.

    `quantifier` is any, no, count or washout; `operator`/`count` compare a count."""

    quantifier: str
    variable: VariableRef
    value_set: VariableRef
    window: ListWindow | None
    operator: str = ">="
    count: int = 1


@dataclass(frozen=True)
class Not(Node):
    operand: Expr


@dataclass(frozen=True)
class All(Node):
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Any(Node):
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class AtLeast(Node):
    count: int
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Unless(Node):
    """`requirement unless exception`: met when the requirement holds or the exception applies."""

    requirement: Expr
    exception: Expr


@dataclass(frozen=True)
class Implies(Node):
    """`if condition then requirement`: the requirement only binds subjects meeting the condition."""

    condition: Expr
    requirement: Expr


# -- formulas of derived variables: syntax only; rules/formula_check.py gives it types and units --


@dataclass(frozen=True)
class Number(Node):
    value: float


@dataclass(frozen=True)
class Converted(Node):
    """`creatinine in mg/dL`: a variable read in a stated unit; the position is the unit's."""

    variable: VariableRef
    unit: str


@dataclass(frozen=True)
class Operation(Node):
    """`+ - * / ^`, or a sign with one operand; the position is the operator's, where a caret helps."""

    operator: str
    operands: tuple[Term, ...]


@dataclass(frozen=True)
class Call(Node):
    function: str
    arguments: tuple[Term, ...]


@dataclass(frozen=True)
class Relation(Node):
    """A comparison of two calculations inside a formula's condition: `age >= 65`."""

    left: Term
    operator: str
    right: Term


@dataclass(frozen=True)
class Branch(Node):
    """`if sex is female then 0.742 else 1`."""

    condition: Expr | Relation
    then: Term
    otherwise: Term


Term = Number | VariableRef | Converted | Operation | Call | Branch


Expr = Truth | Comparison | Between | Within | Membership | ListTest | Not | All | Any | AtLeast | Unless | Implies
