"""Check a derived variable's formula, its types and units, and lower it to an expression tree.

A formula reads variables in their canonical units, or in a unit the writer
states (`creatinine in mg/dL`); conversions are folded into the tree here,
once, with the factors of rules/units.py.

Units are checked where they mean something. Clinical equations are empirical:
in `calcium + 0.8 x (4 - albumin in g/dL)` the 0.8 silently carries mg/dL per
g/dL. So a term tracks its unit and whether it is *exact*: made only of
variables (and sums with bare numbers, `140 - age` being years), never scaled
by a number that could hide a unit. Exact terms are held to physics: adding
kg to mg/dL, or g to kg without saying which, is refused, and an exact result
is converted to the derived variable's unit. A term scaled by a number is taken
as the writer wrote it; its result is read in the derived variable's unit, but
refused where that unit is a different scale of the same quantity (hours
labelled days), because then the writer must say which was meant.

Every problem is collected with its position, so a writer fixes them in one pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import pint

from rules import ast, units
from rules import expression as ex
from rules.errors import Position, RuleError, RuleErrors, RuleValidationError
from rules.formulas import FUNCTIONS, Function, Parameter
from rules.parser import parse_formula
from rules.protocol import VariableDef

# Functions of the arithmetic itself: name -> (fewest, most arguments)
INTRINSICS = {
    "min": (2, 32),
    "max": (2, 32),
    "abs": (1, 1),
    "sqrt": (1, 1),
    "ln": (1, 1),
    "log10": (1, 1),
    "exp": (1, 1),
}
_VERBS = {"+": "add", "-": "subtract", "min": "take the smaller of", "max": "take the larger of"}
MAX_DEPTH = 100  # far beyond any clinical equation (CKD-EPI written out nests 12 deep)
_NUMBER_IN_UNIT = re.compile(r"/[\d.]+(?:$|/)")  # `mg/dL/0.7`: a division the writer meant outside the unit


@dataclass(frozen=True)
class Unit:
    label: str
    quantity: pint.Quantity
    plain: bool = True  # a label as written (rules/units.py reads it); False for one computed here

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Typed:
    """A lowered term with what the checker knows of it."""

    node: ex.Expr | None  # None after an error, so one mistake is reported once
    kind: str  # number, date, code, boolean, or error
    unit: Unit | None = None  # numbers: None for a bare number, which takes the unit its context gives it
    exact: bool = True
    molar_mass: str | None = None  # a variable read as stored: its analyte's molar mass, for conversions
    constant: float | None = None  # the value of a term that reads no variable
    codes: tuple[str, ...] = ()


_ERROR = Typed(None, "error")


@dataclass(frozen=True)
class CheckedFormula:
    expression: ex.Expr
    inputs: tuple[str, ...]  # every variable the formula may read, sorted
    result_factor: float  # the formula's unit -> the derived variable's canonical unit


def referenced(tree: ast.Node) -> set[str]:
    """The variable names a parsed formula mentions (for the order of derivation), before any checking."""
    found: set[str] = set()
    stack = [tree]
    while stack:  # without recursion: this runs before the depth of the formula is checked
        node = stack.pop()
        if isinstance(node, ast.VariableRef):
            found.add("screening_date" if node.name == "screening" else node.name)
        elif isinstance(node, ast.Call) and node.function in FUNCTIONS:
            missing = FUNCTIONS[node.function].parameters[len(node.arguments) :]
            found |= {str(p.default) for p in missing if p.type == "date"}  # age(date_of_birth): screening_date
        stack += _children(node)
    return found


def check_formula(name: str, text: str, variables: Mapping[str, VariableDef]) -> CheckedFormula:
    """Check the formula of derived variable `name` against the dictionary's definitions.

    Raises RuleErrors listing every problem, each with its position in the formula.
    """
    try:
        tree = parse_formula(text)
    except RuleError as error:
        raise RuleErrors([error], f"variable `{name}` formula") from None
    return check_parsed(name, text, tree, variables)


def check_parsed(name: str, text: str, tree: ast.Term, variables: Mapping[str, VariableDef]) -> CheckedFormula:
    """check_formula for a formula already parsed (the dictionary parses first to order derivations)."""
    if _depth(tree) > MAX_DEPTH:
        error = RuleValidationError(f"the formula nests more than {MAX_DEPTH} levels deep", Position(1, 1, 0, 0), text)
        raise RuleErrors([error], f"variable `{name}` formula")
    checker = _Checker(text, variables, variables[name])
    checked = checker.formula(tree)
    if checker.errors or checked is None:
        raise RuleErrors(list(checker.errors), f"variable `{name}` formula")
    return checked


def _children(node: object) -> list[ast.Node]:
    found: list[ast.Node] = []
    for value in vars(node).values():
        found += [item for item in (value if isinstance(value, tuple) else (value,)) if isinstance(item, ast.Node)]
    return found


def _depth(tree: ast.Node) -> int:
    """How deep a parsed formula nests, counted without recursion (the checker recurses once per level)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack += [(child, level + 1) for child in _children(node)]
    return deepest


def _reciprocal_label(label: str) -> str:
    if label.startswith("/"):
        return label[1:]  # 1 / (/min) is min
    return f"1/({label})" if "/" in label else f"1/{label}"


def _power_label(label: str, exponent: float) -> str:
    return f"({label})^{exponent:g}" if any(c in label for c in "/·^ ") else f"{label}^{exponent:g}"


class _Checker:
    def __init__(self, text: str, variables: Mapping[str, VariableDef], target: VariableDef) -> None:
        self.text = text
        self.variables = variables
        self.target = target
        self.errors: list[RuleValidationError] = []

    def error(self, message: str, node: ast.Node, suggestion: str | None = None) -> Typed:
        self.errors.append(RuleValidationError(message, node.position, self.text, suggestion))
        return _ERROR

    def whole(self, message: str) -> None:
        """A problem of the formula as a whole (its result): shown from its first character."""
        self.errors.append(RuleValidationError(message, Position(1, 1, 0, len(self.text)), self.text))

    # -- the whole formula -------------------------------------------------------------------

    def formula(self, tree: ast.Term) -> CheckedFormula | None:
        result = self.term(tree)
        if result.node is None:
            return None
        if self.target.type != "number":
            self.whole(f"`{self.target.name}` is a {self.target.type}; a formula computes a number")
            return None
        if result.kind != "number":
            self.whole(f"the formula gives a {result.kind}, `{self.target.name}` is a number")
            return None
        factor = self.result_factor(result)
        if factor is None:
            return None
        node = result.node
        return CheckedFormula(node, tuple(sorted(node.reads())), factor)

    def result_factor(self, result: Typed) -> float | None:
        target, name = self.target.unit, self.target.name
        unit = result.unit
        if unit is None:
            return 1.0
        if target is None:
            if unit.quantity.dimensionless or not result.exact:
                return self.factor(unit, "dimensionless", None) if result.exact else 1.0
            self.whole(f"the formula gives {unit}; declare `{name}` with a unit, e.g. `unit: {unit}`")
            return None
        factor = self.factor(unit, target, result.molar_mass or self.target.molar_mass)
        if result.exact:
            if factor is None:
                self.whole(f"the formula gives {unit}, which does not convert to {target}, the unit of `{name}`")
            return factor
        both_numbers = unit.quantity.dimensionless and units.parse(target).dimensionless
        if factor is None or factor == 1.0 or both_numbers:
            return 1.0  # a number in the formula may carry the difference: taken as written, in `target`
        self.whole(
            f"the formula computes in {unit}, scaled by a number, and `{name}` is in {target}: say which is meant,"
            f" by reading the inputs in {target} (`variable in {target}`) or declaring `{name}` in {unit}"
        )
        return None

    @staticmethod
    def factor(unit: Unit, target: str, molar_mass: str | None) -> float | None:
        """unit -> target, or None if they do not convert."""
        try:
            if unit.plain:
                return units.factor(unit.label, target, molar_mass)
            return units.tidy(float((unit.quantity / units.parse(target)).to("dimensionless").magnitude))
        except (units.UnitError, pint.errors.PintError):
            return None

    # -- terms -------------------------------------------------------------------------------

    def term(self, node: ast.Node) -> Typed:
        method = getattr(self, f"term_{type(node).__name__.lower()}", None)
        if method is None:  # a criterion construct where a calculation belongs
            return self.error("here a calculation is needed", node)
        return method(node)

    def number(self, node: ast.Node, what: str) -> Typed:
        return self.as_number(self.term(node), node, what)

    def as_number(self, typed: Typed, node: ast.Node, what: str) -> Typed:
        """A term that must be a number (dates only subtract, codes and yes/no only decide branches)."""
        if typed.kind in ("number", "error"):
            return typed
        if typed.kind == "date":
            return self.error(
                f"a date cannot {what}: subtract two dates for days, or use completed_years(from, to)", node
            )
        if typed.kind == "code":
            return self.error(f"a code cannot {what}: branch on it, e.g. `if sex is female then 1 else 2`", node)
        return self.error(f"a yes/no value cannot {what}: branch on it, `if … then … else …`", node)

    def term_number(self, node: ast.Number) -> Typed:
        return Typed(ex.Constant(float(node.value)), "number", constant=float(node.value))

    def variable(self, ref: ast.VariableRef) -> VariableDef | None:
        name = "screening_date" if ref.name == "screening" else ref.name
        definition = self.variables.get(name)
        if definition is None:
            matches = difflib.get_close_matches(name, list(self.variables), n=1, cutoff=0.6)
            self.error(f"unknown variable `{ref.name}`", ref, matches[0] if matches else None)
        return definition

    def term_variableref(self, node: ast.VariableRef) -> Typed:
        definition = self.variable(node)
        if definition is None:
            return _ERROR
        read = ex.Read(definition.name)
        if definition.type == "list":
            return self.error(
                f"`{definition.name}` is a list: a formula reads single values; test the list in a rule,"
                f" e.g. `count of {definition.name} in <value set> >= 2`",
                node,
            )
        if definition.type == "number":
            unit = Unit(definition.unit, units.parse(definition.unit)) if definition.unit else None
            return Typed(read, "number", unit, molar_mass=definition.molar_mass)
        return Typed(read, definition.type, codes=definition.codes)

    def term_converted(self, node: ast.Converted) -> Typed:
        definition = self.variable(node.variable)
        if definition is None:
            return _ERROR
        if definition.type != "number" or not definition.unit:
            return self.error(f"`{definition.name}` has no unit to convert from", node.variable)
        if _NUMBER_IN_UNIT.search(node.unit):
            return self.error(f"`{node.unit}` reads as one unit: put spaces around `/` to divide", node)
        try:
            quantity = units.parse(node.unit)
        except units.UnitError as error:
            return self.error(str(error), node, getattr(error, "suggestion", None))
        try:
            factor = units.factor(definition.unit, node.unit, definition.molar_mass)
        except units.UnitError:
            return self.error(
                f"`{definition.name}` is in {definition.unit}, which does not convert to {node.unit}", node
            )
        return Typed(
            ex.Read(definition.name, factor), "number", Unit(node.unit, quantity), molar_mass=definition.molar_mass
        )

    def term_operation(self, node: ast.Operation) -> Typed:
        if node.operator == "neg":
            operand = self.number(node.operands[0], "be negated")
            if operand.node is None:
                return _ERROR
            return self.folded(replace(operand, node=ex.Apply("neg", (operand.node,)), molar_mass=None))
        left, right = self.term(node.operands[0]), self.term(node.operands[1])
        if node.operator == "-" and left.kind == "date" and right.kind == "date":
            days = Unit("days", units.parse("days"))
            return Typed(ex.Apply("-", (left.node, right.node)), "number", days)  # type: ignore[arg-type]
        verb = {"+": "be added", "-": "be subtracted", "*": "be multiplied", "/": "be divided", "^": "be raised"}
        left = self.as_number(left, node.operands[0], verb[node.operator])
        right = self.as_number(right, node.operands[1], verb[node.operator])
        if left.node is None or right.node is None:
            return _ERROR
        apply = ex.Apply(node.operator, (left.node, right.node))
        if node.operator in ("+", "-"):
            merged = self.merge(left, right, _VERBS[node.operator], node)
            return self.folded(replace(merged, node=apply)) if merged.node is not None else _ERROR
        if node.operator == "^":
            return self.folded(self.power(left, right, apply))
        return self.folded(self.product(left, right, node.operator, apply))

    def merge(self, left: Typed, right: Typed, verb: str, node: ast.Node) -> Typed:
        """The unit of a sum, a min/max or the two branches of a choice; refuses what cannot mix."""
        exact = left.exact and right.exact
        if left.unit is None or right.unit is None:
            return Typed(left.node, "number", left.unit or right.unit, exact)
        ratio = left.unit.quantity / right.unit.quantity
        same_dimension = ratio.dimensionless
        if same_dimension and abs(float(ratio.to("dimensionless").magnitude) - 1.0) < 1e-12:
            return Typed(left.node, "number", left.unit, exact)
        if not exact:
            return Typed(left.node, "number", left.unit, False)
        if same_dimension:
            return self.error(
                f"cannot {verb} {left.unit} and {right.unit} as they stand: read both in one unit"
                f" (e.g. `variable in {left.unit}`)",
                node,
            )
        return self.error(f"cannot {verb} {left.unit} and {right.unit}: they measure different things", node)

    def product(self, left: Typed, right: Typed, operator: str, apply: ex.Apply) -> Typed:
        if left.unit is None and right.unit is None:
            return Typed(apply, "number", None, left.exact and right.exact)
        if left.unit is not None and right.unit is not None:
            if operator == "*":
                quantity, label = left.unit.quantity * right.unit.quantity, f"{left.unit}·{right.unit}"
            else:
                quantity = left.unit.quantity / right.unit.quantity
                label = f"{left.unit}/({right.unit})" if "/" in right.unit.label else f"{left.unit}/{right.unit}"
            return Typed(apply, "number", Unit(label, quantity, plain=False), left.exact and right.exact)
        bare, measured = (left, right) if left.unit is None else (right, left)
        exact = measured.exact and bare.exact and bare.constant == 1.0  # any other number may carry a unit
        unit = measured.unit
        assert unit is not None
        if operator == "/" and measured is right:
            unit = Unit(_reciprocal_label(unit.label), 1 / unit.quantity, plain=False)
        return Typed(apply, "number", unit, exact)

    def power(self, base: Typed, exponent: Typed, apply: ex.Apply) -> Typed:
        """A whole constant power keeps physics (m^2); a fractional one of a unit is empirical (RR^(1/3) in s)."""
        n = exponent.constant
        if n is not None and (exponent.unit is None or exponent.unit.quantity.dimensionless):
            if base.unit is None:
                return Typed(apply, "number", None, base.exact)
            unit = Unit(_power_label(base.unit.label, n), base.unit.quantity**n, False)
            return Typed(
                apply, "number", unit, base.exact and (float(n).is_integer() or base.unit.quantity.dimensionless)
            )
        return Typed(apply, "number", None, False)  # 0.9938 ^ age: an empirical factor

    def folded(self, typed: Typed) -> Typed:
        """Note the value of a term that reads no variable: a constant power's exponent, `times`' factor."""
        if typed.node is not None and not typed.node.reads():
            value = ex.evaluate(typed.node, {})
            if isinstance(value, int | float):
                return replace(typed, constant=float(value))
        return replace(typed, constant=None)

    # -- choices -------------------------------------------------------------------------------

    def term_branch(self, node: ast.Branch) -> Typed:
        condition = self.condition(node.condition)
        then = self.number(node.then, "be the value of a choice")
        otherwise = self.number(node.otherwise, "be the value of a choice")
        if condition is None or then.node is None or otherwise.node is None:
            return _ERROR
        merged = self.merge(then, otherwise, "choose between", node)
        if merged.node is None:
            return _ERROR
        return self.folded(replace(merged, node=ex.Branch(condition, then.node, otherwise.node)))

    def condition(self, node: ast.Node) -> ex.Expr | None:
        if isinstance(node, ast.Truth):
            definition = self.variable(node.variable)
            if definition is None:
                return None
            if definition.type != "boolean":
                example = "`sex is female`" if definition.type == "code" else "a comparison, e.g. `age >= 65`"
                self.error(f"`{definition.name}` is a {definition.type}, not yes/no: write {example}", node)
                return None
            return ex.Read(definition.name)
        if isinstance(node, ast.Membership):
            return self.membership(node)
        if isinstance(node, ast.Not):
            operand = self.condition(node.operand)
            return ex.Logic("not", (operand,)) if operand is not None else None
        if isinstance(node, ast.All | ast.Any):
            operands = [self.condition(o) for o in node.operands]
            if any(o is None for o in operands):
                return None
            return ex.Logic("and" if isinstance(node, ast.All) else "or", tuple(operands))  # type: ignore[arg-type]
        if isinstance(node, ast.Relation):
            return self.relation(node)
        self.error("here a condition is needed, e.g. `sex is female`", node)
        return None

    def membership(self, node: ast.Membership) -> ex.Expr | None:
        definition = self.variable(node.variable)
        if definition is None:
            return None
        if definition.type != "code":
            self.error(f"`{definition.name}` is a {definition.type}; `is`/`in` test a code", node)
            return None
        unknown = [code for code in node.codes if code not in definition.codes]
        for code in unknown:
            matches = difflib.get_close_matches(code, list(definition.codes), n=1, cutoff=0.6)
            self.error(
                f"`{definition.name}` has no code `{code}` (codes: {', '.join(definition.codes)})",
                node,
                matches[0] if matches else None,
            )
        return None if unknown else ex.IsCode(definition.name, frozenset(node.codes), node.negated)

    def relation(self, node: ast.Relation) -> ex.Expr | None:
        left, right = self.term(node.left), self.term(node.right)
        if left.kind == "date" and right.kind == "date":
            return ex.Compare(node.operator, left.node, right.node)  # type: ignore[arg-type]
        left, right = self.as_number(left, node.left, "be compared"), self.as_number(right, node.right, "be compared")
        if left.node is None or right.node is None or self.merge(left, right, "compare", node).node is None:
            return None
        return ex.Compare(node.operator, left.node, right.node)

    # -- calls -------------------------------------------------------------------------------

    def term_call(self, node: ast.Call) -> Typed:
        if node.function in INTRINSICS:
            return self.intrinsic(node)
        function = FUNCTIONS.get(node.function)
        if function is None:
            known = sorted([*FUNCTIONS, *INTRINSICS])
            matches = difflib.get_close_matches(node.function, known, n=1, cutoff=0.6)
            return self.error(
                f"unknown function `{node.function}` (known: {', '.join(known)})", node, matches[0] if matches else None
            )
        required = sum(1 for p in function.parameters if p.default is None)
        if not required <= len(node.arguments) <= len(function.parameters):
            return self.error(f"{function.name} takes ({', '.join(p.name for p in function.parameters)})", node)
        arguments: list[ex.Expr] = []
        first: Typed | None = None
        for index, parameter in enumerate(function.parameters):
            if index >= len(node.arguments):
                default = parameter.default
                arguments.append(ex.Read(default) if parameter.type == "date" else ex.Constant(default))  # type: ignore[arg-type]
                continue
            argument = self.argument(function, parameter, node.arguments[index])
            first = first or argument
            if argument.node is not None:
                arguments.append(argument.node)
        if len(arguments) != len(function.parameters):
            return _ERROR
        call = ex.Call(function.name, function.compute, tuple(arguments))
        if function.keeps_unit and first is not None:
            return self.folded(Typed(call, "number", first.unit, first.exact))
        unit = Unit(function.result_unit, units.parse(function.result_unit)) if function.result_unit else None
        return self.folded(Typed(call, function.result_type, unit))

    def argument(self, function: Function, parameter: Parameter, node: ast.Term) -> Typed:
        where = f"{function.name}'s `{parameter.name}`"
        typed = self.term(node)
        if typed.node is None:
            return typed
        if parameter.type == "constant":
            if typed.constant is None:
                return self.error(f"{where} must be a number written in the formula", node)
            return typed
        if parameter.type != typed.kind:
            wanted = {"number": "a number", "date": "a date", "code": "a code", "boolean": "a yes/no variable"}
            return self.error(f"{where} needs {wanted[parameter.type]}, this is a {typed.kind}", node)
        if parameter.type == "code" and not set(parameter.codes) <= set(typed.codes):
            return self.error(f"{where} must be a code variable with the codes {', '.join(parameter.codes)}", node)
        if parameter.type != "number" or parameter.unit is None or typed.unit is None:
            return typed
        factor = self.factor(typed.unit, parameter.unit, typed.molar_mass)
        if factor is None:
            return self.error(f"{where} is in {parameter.unit}; this is in {typed.unit}, which does not convert", node)
        if factor == 1.0:
            return typed
        if not typed.exact:
            return self.error(
                f"{where} is in {parameter.unit}; this computes in {typed.unit}, scaled by a number:"
                f" read the inputs in {parameter.unit} (`variable in {parameter.unit}`)",
                node,
            )
        if isinstance(typed.node, ex.Read):
            return replace(typed, node=ex.Read(typed.node.name, units.tidy(typed.node.factor * factor)))
        return replace(typed, node=ex.Apply("*", (typed.node, ex.Constant(factor))))

    def intrinsic(self, node: ast.Call) -> Typed:
        fewest, most = INTRINSICS[node.function]
        if not fewest <= len(node.arguments) <= most:
            shape = "one value" if most == 1 else "two values or more"
            return self.error(f"{node.function} takes {shape}", node)
        operands = [self.number(a, f"go into {node.function}") for a in node.arguments]
        if any(o.node is None for o in operands):
            return _ERROR
        apply = ex.Apply(node.function, tuple(o.node for o in operands))  # type: ignore[misc]
        if node.function in ("min", "max"):
            merged = operands[0]
            for operand in operands[1:]:
                merged = self.merge(merged, operand, _VERBS[node.function], node)
                if merged.node is None:
                    return _ERROR
            return self.folded(replace(merged, node=apply))
        (operand,) = operands
        if node.function == "abs":
            return self.folded(replace(operand, node=apply, molar_mass=None))
        if node.function == "sqrt":
            return self.folded(self.power(operand, Typed(ex.Constant(0.5), "number", constant=0.5), apply))
        return self.folded(Typed(apply, "number", None, operand.unit is None and operand.exact))
