"""Validate a parsed rule against the data dictionary and lower it to the IR.

Every problem is collected with its position, so a writer sees all of them
when saving. Thresholds are converted to the variable's canonical unit here,
once, so the engine compares plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rules import ast, lists, units
from rules.dictionary import DataDictionary, Variable
from rules.errors import RuleErrors, RuleSyntaxError, RuleValidationError
from rules.formulas import calendar_unit
from rules.ir import Group, Node, Test
from rules.parser import parse_rule


@dataclass(frozen=True)
class ComputedField:
    """A threshold the rule needs that depends on the subject, computed before criteria are tested.

    `window`: the first day of `amount unit` before the `source` date (calendar arithmetic).
    `scale`: `source` x `amount`, rounded like a unit conversion. The engine's own `$mul` is
    binary floating point (1.2 x 1.5 = 1.7999999999999998), which would fail an INR of exactly
    1.5 x ULN; a computed field keeps boundaries exact and the engine comparing field to field.
    """

    field: str
    kind: str
    source: str
    amount: float
    unit: str = ""
    # `list`: one of a count's three fields (rules/lists.py): `part` true, possible or settled, of the
    # entries of list `source` in `value_set` within `amount unit` before `reference` (no unit: ever).
    value_set: str = ""
    reference: str = ""
    part: str = ""

    @property
    def window(self) -> lists.Window:
        return lists.Window(self.amount, self.unit, self.reference or "screening_date")


@dataclass
class CheckedRule:
    text: str
    tree: ast.Expr
    ir: Node
    computed: list[ComputedField] = field(default_factory=list)
    looks_back: frozenset[str] = frozenset()


def _fmt(value: float) -> str:
    return f"{value:g}"


class _Checker:
    def __init__(self, text: str, dictionary: DataDictionary, kind: str | None) -> None:
        self.text = text
        self.dictionary = dictionary
        # Whether the node being lowered passes the criterion when true: an exception (`unless`)
        # must spare the subject, which means "or" in an inclusion and "and not" in an exclusion.
        self.sparing_when_true: bool | None = None if kind is None else kind == "inclusion"
        self.errors: list[RuleValidationError] = []
        self.computed: dict[str, ComputedField] = {}
        self.looks_back: set[str] = set()  # dates a window counts back from screening: never after it

    def error(self, message: str, node: ast.Node, suggestion: str | None = None) -> None:
        self.errors.append(RuleValidationError(message, node.position, self.text, suggestion))

    def variable(self, ref: ast.VariableRef, *types: str) -> Variable | None:
        variable = self.dictionary.variables.get(ref.name)
        if variable is None:
            self.error(f"unknown variable `{ref.name}`", ref, self.dictionary.suggest(ref.name))
            return None
        if types and variable.type not in types:
            wanted = " or ".join(types)
            self.error(f"`{ref.name}` is a {variable.type}, here a {wanted} is needed", ref)
            return None
        return variable

    # -- nodes -----------------------------------------------------------------------------

    def lower(self, node: ast.Expr) -> Node:
        method = getattr(self, f"lower_{type(node).__name__.lower()}")
        return method(node)

    def lower_truth(self, node: ast.Truth) -> Node:
        variable = self.dictionary.variables.get(node.variable.name)
        if variable is not None and variable.type != "boolean":
            example = {
                "number": "compare it, e.g. `{name} >= …`",
                "code": "test its code, e.g. `{name} is …`",
                "date": "place it in time, e.g. `{name} within 14 days before screening`",
                "list": "match its entries, e.g. `any {name} in <value set>`",
            }.get(variable.type, "use it in a comparison")
            hint = example.format(name=variable.name)
            self.error(f"`{variable.name}` is a {variable.type}, not yes/no: {hint}", node.variable)
        else:
            self.variable(node.variable, "boolean")
        return Test(node.variable.name, "==", True)

    def lower_comparison(self, node: ast.Comparison) -> Node:
        variable = self.variable(node.variable, "number", "date")
        operand = node.operand
        name = node.variable.name
        if isinstance(operand, ast.UlnMultiple | ast.LlnMultiple):
            kind, word, side = (
                ("uln", "ULN", "upper") if isinstance(operand, ast.UlnMultiple) else ("lln", "LLN", "lower")
            )
            if variable is not None and not getattr(variable.definition, kind):
                self.error(f"`{name}` has no {side} limit of normal; mark it `{kind}` in the dictionary", operand)
            shown = word if operand.factor == 1 else f"{_fmt(operand.factor)} x {word}"
            limit = self.scaled(f"{name}_{kind}", float(operand.factor))
            return Test(name, node.operator, other=limit, basis=f"{name}_{kind}", shown=shown)
        if isinstance(operand, ast.VariableRef):
            other = self.variable(operand, "number", "date")
            factor = 1.0
            if variable is not None and other is not None:
                factor = self.field_factor(variable, other, operand)
            target = self.scaled(operand.name, factor)
            return Test(name, node.operator, other=target, basis=operand.name, shown=operand.name)
        if variable is not None and variable.type == "date":
            self.error(f"`{name}` is a date: use `{name} within … before screening`", operand)
            return Test(name, node.operator, 0)
        value = self.quantity(operand, variable)
        return Test(name, node.operator, value, shown=self.shown(operand, variable))

    def lower_between(self, node: ast.Between) -> Node:
        variable = self.variable(node.variable, "number")
        low = self.quantity(node.low, variable)
        high = self.quantity(node.high, variable)
        if low > high:
            self.error("the lower bound is above the upper bound", node.low)
        name = node.variable.name
        items = (
            Test(name, ">=", low, shown=self.shown(node.low, variable)),
            Test(name, "<=", high, shown=self.shown(node.high, variable)),
        )
        return Group("all", items, style="between")

    def lower_within(self, node: ast.Within) -> Node:
        self.variable(node.variable, "date")
        reference = self.variable(node.reference, "date")
        amount, unit = self.span(node.span)
        ref_name = node.reference.name if reference is not None else "screening_date"
        if node.direction == "before" and ref_name == "screening_date":
            self.looks_back.add(node.variable.name)
        signed = amount if node.direction == "before" else -amount
        bound = f"_{ref_name}_{'minus' if signed >= 0 else 'plus'}_{_fmt(abs(signed)).replace('.', '_')}_{unit}"
        self.computed[bound] = ComputedField(bound, "window", ref_name, signed, unit)
        words = {"within": "within", "at_least": "at least", "more_than": "more than", "less_than": "less than"}
        where = "screening" if ref_name == "screening_date" else ref_name
        shown = f"{words[node.relation]} {_fmt(amount)} {unit} {node.direction} {where}"
        name = node.variable.name

        def test(op: str, other: str) -> Test:
            return Test(name, op, other=other, basis=ref_name, shown=shown)

        before = node.direction == "before"
        if node.relation == "within":  # both ends inclusive
            low, high = (bound, ref_name) if before else (ref_name, bound)
            inside = Group("all", (test(">=", low), test("<=", high)), style="within")
            return Group("not", (inside,), style="not") if node.negated else inside
        if node.relation == "at_least":
            return Group("all", (test("<=" if before else ">=", bound),), style="window")
        if node.relation == "more_than":
            return Group("all", (test("<" if before else ">", bound),), style="window")
        items = (test(">", bound), test("<=", ref_name)) if before else (test(">=", ref_name), test("<", bound))
        return Group("all", items, style="window")

    def span(self, quantity: ast.Quantity) -> tuple[float, str]:
        """A window's length in a calendar unit; hours only as whole days, since dates have no time of day."""
        amount = float(quantity.value)
        label = (quantity.unit or "").strip().lower()
        if label in ("h", "hr", "hrs", "hour", "hours"):
            if not amount.is_integer() or amount % 24:
                self.error("dates carry no time of day: give hours in whole days (24, 48, 72 …) or use days", quantity)
                return amount, "days"
            return amount / 24, "days"
        unit = calendar_unit(quantity.unit)
        if unit is None:
            self.error("a window needs hours, days, weeks, months or years, e.g. `14 days`", quantity)
            return amount, "days"
        if unit in ("months", "years") and not amount.is_integer():
            self.error(f"a window in {unit} must be a whole number", quantity)
        return amount, unit

    def lower_membership(self, node: ast.Membership) -> Node:
        variable = self.variable(node.variable, "code")
        name = node.variable.name
        codes: list[str] = []
        for code in node.codes:
            canonical = code
            if variable is not None:
                known = {c.lower(): c for c in variable.definition.codes}
                if code.lower() not in known:
                    allowed = ", ".join(variable.definition.codes)
                    self.error(f"`{code}` is not a code of `{name}` (codes: {allowed})", node)
                canonical = known.get(code.lower(), code)
            codes.append(canonical)
        if len(codes) == 1:
            return Test(name, "!=" if node.negated else "==", codes[0], shown=codes[0])
        tests = tuple(Test(name, "==", c, shown=c) for c in codes)
        either = Group("any", tests, style="in")
        return Group("not", (either,), style="not") if node.negated else either

    def lower_listtest(self, node: ast.ListTest) -> Node:
        """A history matched against a value set: comparisons on three derived counts (rules/lists.py)."""
        variable = self.variable(node.variable, "list")
        value_set = self.dictionary.value_sets.get(node.value_set.name)
        if value_set is None:
            known = ", ".join(self.dictionary.value_sets) or "none in this protocol"
            self.error(
                f"unknown value set `{node.value_set.name}` (value sets: {known})",
                node.value_set,
                lists.suggest(node.value_set.name, self.dictionary.value_sets),
            )
        elif variable is not None and variable.definition.system:
            system = lists.system_of(variable.definition.system)
            if system != value_set.system:
                self.error(
                    f"`{value_set.name}` holds {value_set.system} codes, but `{variable.name}` entries are {system}",
                    node.value_set,
                )
        window = self.list_window(node, value_set)
        name, set_name = node.variable.name, node.value_set.name
        key = "ever" if not window.unit else f"{_fmt(window.amount).replace('.', '_')}{window.unit}_{window.reference}"
        prefix = f"_list{len(name)}_{name}_{len(set_name)}_{set_name}_{key}"  # lengths: no two tests share one
        for part in ("true", "possible", "settled"):
            self.computed[f"{prefix}_{part}"] = ComputedField(
                f"{prefix}_{part}", "list", name, window.amount, window.unit, set_name, window.reference, part
            )
        shown = f"{set_name}{_window_words(window, node.window)}"

        def at_least(n: int) -> Node:
            settled = Group(
                "any",
                (Test(f"{prefix}_true", ">=", n, shown=shown), Test(f"{prefix}_settled", "==", True, shown=shown)),
            )
            return Group("all", (Test(f"{prefix}_possible", ">=", n, shown=shown), settled))

        n = node.count
        if node.quantifier == "count" and (not float(n).is_integer() or n < 0):
            self.error("a count is compared with a whole number, e.g. `>= 2`", node)
            n = 1
        n = int(n)
        lowered: Node
        if node.quantifier == "no":
            lowered = Group("not", (at_least(1),))
        elif node.quantifier in ("any", "washout") or node.operator == ">=":
            lowered = at_least(n)
        elif node.operator == ">":
            lowered = at_least(n + 1)
        elif node.operator == "<=":
            lowered = Group("not", (at_least(n + 1),))
        elif node.operator == "<":
            lowered = Group("not", (at_least(n),))
        else:
            exactly = Group("all", (at_least(n), Group("not", (at_least(n + 1),))))
            lowered = exactly if node.operator == "==" else Group("not", (exactly,))
        return Group("all", (lowered,), style=f"list:{node.quantifier}")

    def list_window(self, node: ast.ListTest, value_set: lists.ValueSet | None) -> lists.Window:
        window = node.window
        if window is None:
            return lists.Window()
        if window.direction != "before":
            self.error("a history counts back: write `within … before` a date", window)
        reference = self.variable(window.reference, "date")
        if reference is not None and reference.is_derived:
            self.error(f"a window counts back from a submitted date; `{reference.name}` is derived", window.reference)
        ref_name = window.reference.name
        if ref_name == "screening_date":
            self.looks_back.add(node.variable.name)
        if window.span is None:  # half-lives
            half_lives = float(window.half_lives or 0)
            if value_set is not None and value_set.half_life_days is None:
                self.error(
                    f"value set `{value_set.name}` has no `half_life`; give it one (e.g. `13 h`)", node.value_set
                )
            if half_lives <= 0:
                self.error("a washout needs a number of half-lives above zero", window)
            days = half_lives * (value_set.half_life_days or 0.0) if value_set is not None else 0.0
            return lists.Window(units.tidy(days), "half_life_days", ref_name)
        unit = calendar_unit(window.span.unit)
        if unit is None:
            self.error("a window needs days, weeks, months or years, e.g. `8 weeks`", window.span)
            unit = "days"
        elif unit in ("months", "years") and not float(window.span.value).is_integer():
            self.error(f"a window in {unit} must be a whole number", window.span)
        return lists.Window(float(window.span.value), unit, ref_name)

    def lower_not(self, node: ast.Not) -> Node:
        if self.sparing_when_true is None:
            return Group("not", (self.lower(node.operand),), style="not")
        self.sparing_when_true = not self.sparing_when_true
        try:
            return Group("not", (self.lower(node.operand),), style="not")
        finally:
            self.sparing_when_true = not self.sparing_when_true

    def lower_all(self, node: ast.All) -> Node:
        return Group("all", tuple(self.lower(o) for o in node.operands), style="and")

    def lower_any(self, node: ast.Any) -> Node:
        return Group("any", tuple(self.lower(o) for o in node.operands), style="or")

    def lower_atleast(self, node: ast.AtLeast) -> Node:
        if not 1 <= node.count <= len(node.operands):
            self.error(f"at least {node.count} of {len(node.operands)} can never be met", node)
        items = tuple(self.lower(o) for o in node.operands)
        return Group("at_least", items, count=node.count, style="at_least")

    def lower_unless(self, node: ast.Unless) -> Node:
        """`X unless Y`: Y spares the subject. In an inclusion that is `X or Y`; in an exclusion, where
        the subject passes when the condition does not hold, it is `X and not Y`."""
        requirement = self.lower(node.requirement)
        if self.sparing_when_true is None:
            self.error("`unless` needs a criterion to spare the subject from: write `… or …` or `… and not …`", node)
            return requirement
        sparing_when_true = self.sparing_when_true
        self.sparing_when_true = True  # the exception is read as stated, whatever the criterion's kind
        try:
            exception = self.lower(node.exception)
        finally:
            self.sparing_when_true = sparing_when_true
        if sparing_when_true:
            return Group("any", (requirement, exception), style="unless")
        return Group("all", (requirement, Group("not", (exception,), style="not")), style="unless_excluded")

    def lower_implies(self, node: ast.Implies) -> Node:
        condition = Group("not", (self.lower(node.condition),), style="not")
        return Group("any", (condition, self.lower(node.requirement)), style="implies")

    # -- units -------------------------------------------------------------------------------

    def quantity(self, quantity: ast.Quantity, variable: Variable | None) -> float:
        value = float(quantity.value)
        if variable is None:
            return value
        canonical = variable.unit
        if quantity.unit is None:
            if canonical and not units.is_dimensionless(canonical):
                self.error(f"missing unit: `{variable.name}` is measured in {canonical}", quantity)
            return value
        if canonical is None:
            self.error(f"`{variable.name}` has no unit, but {quantity.unit} was given", quantity)
            return value
        d = variable.definition
        try:
            return units.conversion(quantity.unit, canonical, d.molar_mass, d.conversion)(value)
        except units.UnknownUnitError as error:
            reason = f": {error.reason}" if error.reason else ""
            self.error(f"`{quantity.unit}` is not a unit we know{reason}", quantity, error.suggestion)
        except units.UnitMismatchError as error:
            self.error(f"`{quantity.unit}` does not fit `{variable.name}` ({canonical}): {error.reason}", quantity)
        return value

    def shown(self, quantity: ast.Quantity, variable: Variable | None) -> str:
        unit = quantity.unit or (variable.unit if variable else None)
        return f"{_fmt(quantity.value)} {unit}" if unit else _fmt(quantity.value)

    def scaled(self, source: str, factor: float) -> str:
        """The field holding `source` x `factor`: the source itself when the factor is 1."""
        if factor == 1.0:
            return source
        name = f"_{source}_x{_fmt(factor).replace('.', '_').replace('-', 'm').replace('+', '')}"
        self.computed[name] = ComputedField(name, "scale", source, factor)
        return name

    def field_factor(self, variable: Variable, other: Variable, node: ast.Node) -> float:
        if variable.type != other.type:
            self.error(
                f"`{variable.name}` ({variable.type}) cannot be compared with `{other.name}` ({other.type})", node
            )
            return 1.0
        if variable.type == "date" or variable.unit == other.unit:
            return 1.0
        if not variable.unit or not other.unit or not units.converts(other.unit, variable.unit):
            self.error(f"`{other.name}` ({other.unit}) does not convert to `{variable.name}` ({variable.unit})", node)
            return 1.0
        conversion = units.conversion(other.unit, variable.unit)
        if not conversion.proportional:
            self.error(
                f"`{other.name}` ({other.unit}) and `{variable.name}` ({variable.unit}) differ by an offset, "
                "not a factor: give both the same unit to compare them",
                node,
            )
            return 1.0
        return conversion.scale


def _window_words(window: lists.Window, written: ast.ListWindow | None) -> str:
    """The window as the writer said it, for explanations."""
    if not window.unit:
        return ""
    before = "screening" if window.reference == "screening_date" else window.reference
    if written is not None and written.half_lives is not None:
        hours = window.amount * 24
        span = f"{_fmt(round(hours, 1))} h" if hours < 72 else f"{_fmt(round(window.amount, 1))} days"
        return f" within {_fmt(written.half_lives)} half-lives ({span}) before {before}"
    return f" within {_fmt(window.amount)} {window.unit} before {before}"


def check_rule(text: str, dictionary: DataDictionary, criterion: str | None = None, *, kind: str | None) -> CheckedRule:
    """Parse and validate one rule; raises RuleErrors listing every problem with its position.

    `kind` is the criterion's (inclusion or exclusion): it decides what an exception spares.
    A named condition has none, and takes no `unless`.
    """
    try:
        tree = parse_rule(text)
    except RuleSyntaxError as error:
        raise RuleErrors([error], criterion) from None
    checker = _Checker(text, dictionary, kind)
    ir = checker.lower(tree)
    if checker.errors:
        raise RuleErrors(list(checker.errors), criterion)
    return CheckedRule(text, tree, ir, list(checker.computed.values()), frozenset(checker.looks_back))
