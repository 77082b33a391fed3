"""What an amendment changes, criterion by criterion, said in words a reviewer reads.

Criteria and variables are matched by their stable codes and names. A changed
rule is compared as structure, not text: each condition is keyed by what it
tests (variable, comparison, ULN, window, code list) so a moved threshold, a
changed unit, a widened window or a branch added to an any-of is named as such;
anything else falls back to a word-level diff of the text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rules import ast, units
from rules.errors import RuleSyntaxError
from rules.parser import parse_rule
from rules.protocol import CriterionDef, ProtocolDef, ValueSetDef, VariableDef


@dataclass
class Change:
    """One thing that changed: a kind a program can act on, and a sentence a person reads."""

    kind: str
    text: str
    before: Any = None
    after: Any = None
    direction: str | None = None  # stricter / looser, where that can be told


@dataclass
class ItemDiff:
    key: str  # criterion code or variable name
    status: str  # added, removed, changed
    changes: list[Change] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass
class ProtocolDiff:
    protocol: str
    before: str
    after: str
    criteria: list[ItemDiff]
    variables: list[ItemDiff]
    cohorts: list[ItemDiff]
    value_sets: list[ItemDiff] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.criteria or self.variables or self.cohorts or self.value_sets)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def words(before: str, after: str) -> list[dict[str, str]]:
    """A word-level diff: runs of equal, deleted and inserted words."""
    a, b = before.split(), after.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append({"op": "equal", "text": " ".join(a[i1:i2])})
            continue
        if op in ("delete", "replace"):
            out.append({"op": "delete", "text": " ".join(a[i1:i2])})
        if op in ("insert", "replace"):
            out.append({"op": "insert", "text": " ".join(b[j1:j2])})
    return out


# -- conditions of a rule, keyed by what they test ----------------------------------------


@dataclass(frozen=True)
class Condition:
    key: tuple[str, ...]
    value: Any
    shown: str
    within: str  # the logical context: and, or, any of, at least k of, unless, if


def _quantity(q: ast.Quantity) -> str:
    return f"{q.value:g} {q.unit}" if q.unit else f"{q.value:g}"


def _conditions(node: ast.Expr, within: str = "rule") -> Iterator[Condition]:
    if isinstance(node, ast.Comparison):
        operand = node.operand
        name = node.variable.name
        if isinstance(operand, ast.UlnMultiple | ast.LlnMultiple):
            limit = "uln" if isinstance(operand, ast.UlnMultiple) else "lln"
            shown = f"{name} {node.operator} {operand.factor:g} x {limit.upper()}"
            yield Condition((name, node.operator, limit), operand.factor, shown, within)
        elif isinstance(operand, ast.VariableRef):
            yield Condition((name, node.operator, operand.name), None, f"{name} {node.operator} {operand.name}", within)
        else:
            yield Condition((name, node.operator), operand, f"{name} {node.operator} {_quantity(operand)}", within)
    elif isinstance(node, ast.Between):
        name = node.variable.name
        shown = f"{name} between {_quantity(node.low)} and {_quantity(node.high)}"
        yield Condition((name, "between"), (node.low, node.high), shown, within)
    elif isinstance(node, ast.Within):
        name = node.variable.name
        word = {"within": "within", "at_least": "at least", "more_than": "more than", "less_than": "less than"}[
            node.relation
        ]
        word = f"not {word}" if node.negated else word
        if node.direction == "after":
            word = f"{word} after"
        shown = f"{name} {word.removesuffix(' after')} {_quantity(node.span)} {node.direction} {node.reference.name}"
        yield Condition((name, word, node.reference.name), node.span, shown, within)
    elif isinstance(node, ast.Truth):
        yield Condition((node.variable.name, "is true"), None, node.variable.name, within)
    elif isinstance(node, ast.Membership):
        word = "not in" if node.negated else "in"
        yield Condition(
            (node.variable.name, word),
            frozenset(node.codes),
            f"{node.variable.name} {word} ({', '.join(node.codes)})",
            within,
        )
    elif isinstance(node, ast.ListTest):
        yield Condition(
            (node.variable.name, f"list {node.quantifier}", node.value_set.name),
            _list_terms(node),
            _list_shown(node),
            within,
        )
    elif isinstance(node, ast.Not):
        yield from _conditions(node.operand, "not")
    elif isinstance(node, ast.All):
        for item in node.operands:
            yield from _conditions(item, "and" if within != "not" else "not")
    elif isinstance(node, ast.Any):
        for item in node.operands:
            yield from _conditions(item, "or")
    elif isinstance(node, ast.AtLeast):
        label = "any of" if node.count == 1 else "at least k of"
        for item in node.operands:
            yield from _conditions(item, label)
    elif isinstance(node, ast.Unless):
        yield from _conditions(node.requirement, within)
        yield from _conditions(node.exception, "unless (exception)")
    elif isinstance(node, ast.Implies):
        yield from _conditions(node.condition, "if (applies to)")
        yield from _conditions(node.requirement, within)


def _list_terms(node: ast.ListTest) -> tuple[Any, ...]:
    """What a history test says beyond its list and value set: the count and the window."""
    window = node.window
    span = None if window is None else (window.half_lives, _plain(window.span), window.reference.name)
    return (node.operator, node.count, span) if node.quantifier == "count" else (span,)


def _list_shown(node: ast.ListTest) -> str:
    head = {"any": "any", "no": "no", "count": "count of", "washout": "last dose of"}[node.quantifier]
    text = f"{head} {node.variable.name} in {node.value_set.name}"
    window = node.window
    if window is not None:
        span = f"{window.half_lives:g} half-lives" if window.span is None else _quantity(window.span)
        text += f" within {span} before {_reference(window.reference.name)}"
    if node.quantifier == "count":
        text += f" {node.operator} {node.count:g}"
    return text


def _counts(node: ast.Expr) -> list[int]:
    """The k of every `at least k of`, in order, to notice a changed count."""
    found: list[int] = []

    def walk(n: object) -> None:
        if isinstance(n, ast.AtLeast):
            found.append(n.count)
        for child in getattr(n, "__dict__", {}).values():
            if isinstance(child, tuple):
                for item in child:
                    walk(item)
            elif isinstance(child, ast.Node):
                walk(child)

    walk(node)
    return found


_STRICTER_WHEN_RAISED = {">=": True, ">": True, "<=": False, "<": False}


def _canonical(quantity: ast.Quantity, variable: VariableDef | None) -> float | None:
    if quantity.unit is None or variable is None or variable.unit is None:
        return float(quantity.value)
    try:
        conversion = units.conversion(quantity.unit, variable.unit, variable.molar_mass, variable.conversion)
    except units.UnitError:
        return None
    return conversion(float(quantity.value))


def _plain(value: Any) -> Any:
    """A condition's value without source positions, to compare what it says, not where."""
    if isinstance(value, ast.Quantity):
        return (value.value, value.unit)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def _threshold_change(a: Condition, b: Condition, variable: VariableDef | None) -> Change | None:
    if _plain(a.value) == _plain(b.value):
        return None
    name = a.key[0]
    label = variable.label if variable else name
    if len(a.key) == 2 and a.key[1] in _STRICTER_WHEN_RAISED:
        old, new = _canonical(a.value, variable), _canonical(b.value, variable)
        if old is not None and new is not None and abs(old - new) > 1e-12:
            raised = new > old
            direction: str | None = "stricter" if raised == _STRICTER_WHEN_RAISED[a.key[1]] else "looser"
            op = a.key[1]
            text = f"{label} threshold moved: {op} {_quantity(a.value)} → {op} {_quantity(b.value)} ({direction})"
            return Change("threshold", text, _quantity(a.value), _quantity(b.value), direction)
        if a.value.unit != b.value.unit:
            return Change(
                "unit",
                f"{label} threshold written in another unit: {_quantity(a.value)} → {_quantity(b.value)} (same value)",
                _quantity(a.value),
                _quantity(b.value),
            )
        return None
    if a.key[1].startswith("list "):
        return Change("history", f"{a.shown} → {b.shown}", a.shown, b.shown)
    if len(a.key) == 3 and a.key[2] in ("uln", "lln"):
        raised = b.value > a.value
        direction = "stricter" if raised == _STRICTER_WHEN_RAISED.get(a.key[1], True) else "looser"
        limit = a.key[2].upper()
        return Change(
            "threshold",
            f"{label} limit moved: {a.key[1]} {a.value:g} x {limit} → {a.key[1]} {b.value:g} x {limit} ({direction})",
            a.value,
            b.value,
            direction,
        )
    if a.key[1] in ("within", "not within"):
        old_days = _days(a.value)
        new_days = _days(b.value)
        wider = new_days > old_days
        direction = None
        if a.key[1] == "not within" or a.within == "not":  # a window that excludes: wider is stricter
            direction = "stricter" if wider else "looser"
        word = "widened" if wider else "narrowed"
        return Change(
            "window",
            f"{label} window {word}: {_quantity(a.value)} → {_quantity(b.value)} before {_reference(a.key[2])}",
            _quantity(a.value),
            _quantity(b.value),
            direction,
        )
    if a.key[1] == "between":
        (lo_a, hi_a), (lo_b, hi_b) = a.value, b.value
        bounds = [_canonical(q, variable) for q in (lo_a, hi_a, lo_b, hi_b)]
        narrower = None not in bounds and bounds[2] >= bounds[0] and bounds[3] <= bounds[1]  # type: ignore[operator]
        return Change(
            "range",
            f"{label} range changed: {_quantity(lo_a)}–{_quantity(hi_a)} → {_quantity(lo_b)}–{_quantity(hi_b)}",
            a.shown,
            b.shown,
            "stricter" if narrower else "looser",
        )
    if a.key[1] in ("in", "not in"):
        added, removed = sorted(b.value - a.value), sorted(a.value - b.value)
        parts = ([f"added {', '.join(added)}"] if added else []) + (
            [f"removed {', '.join(removed)}"] if removed else []
        )
        return Change("codes", f"{label} codes changed: {'; '.join(parts)}", sorted(a.value), sorted(b.value))
    return None


def _reference(name: str) -> str:
    return "screening" if name == "screening_date" else name


_DAYS = {
    "days": 1,
    "day": 1,
    "weeks": 7,
    "week": 7,
    "months": 30.4375,
    "month": 30.4375,
    "years": 365.25,
    "year": 365.25,
}


def _days(span: ast.Quantity) -> float:
    return float(span.value) * _DAYS.get((span.unit or "days").lower(), 1)


def rule_changes(before: str, after: str, variables: dict[str, VariableDef]) -> list[Change]:
    """The structural changes between two rule texts, or one text change if they cannot be compared."""
    try:
        old, new = parse_rule(before), parse_rule(after)
    except RuleSyntaxError:  # a draft still being written: compare as text
        return [Change("rule", "rule text changed", before, after)]
    changes: list[Change] = []
    removed: list[Condition] = []
    unmatched_b = list(_conditions(new))
    for a in _conditions(old):
        match = next((b for b in unmatched_b if b.key == a.key), None)
        if match is None:
            removed.append(a)
            continue
        unmatched_b.remove(match)
        change = _threshold_change(a, match, variables.get(a.key[0]))
        if change:
            changes.append(change)
        if a.within != match.within:
            changes.append(
                Change("logic", f"`{a.shown}` moved from `{a.within}` to `{match.within}`", a.within, match.within)
            )
    for a in removed:
        where = f" (from {a.within})" if a.within not in ("rule", "and") else ""
        changes.append(Change("condition removed", f"condition removed{where}: {a.shown}", a.shown, None))
    for b in unmatched_b:
        direction: str | None
        if b.within.startswith(("or", "any of", "at least")):
            text = f"branch added to `{b.within}`: {b.shown}"
            direction = "looser"
        elif b.within.startswith("unless"):
            text, direction = f"exception added: {b.shown}", "looser"
        else:
            text, direction = f"condition added: {b.shown}", "stricter" if b.within in ("rule", "and") else None
        changes.append(Change("condition added", text, None, b.shown, direction))
    old_counts, new_counts = _counts(old), _counts(new)
    if old_counts != new_counts and len(old_counts) == len(new_counts):
        for k_old, k_new in zip(old_counts, new_counts, strict=True):
            if k_old != k_new:
                direction = "stricter" if k_new > k_old else "looser"
                changes.append(
                    Change("count", f"at least {k_old} of → at least {k_new} of ({direction})", k_old, k_new, direction)
                )
    if not changes and " ".join(before.split()) != " ".join(after.split()):
        changes.append(Change("rule", "rule rewritten without changing what it tests", before, after))
    return changes


def _criterion_changes(a: CriterionDef, b: CriterionDef, variables: dict[str, VariableDef]) -> list[Change]:
    changes: list[Change] = []
    if a.kind != b.kind:
        changes.append(Change("kind", f"kind changed: {a.kind} → {b.kind}", a.kind, b.kind))
    if set(a.cohorts) != set(b.cohorts):
        added, removed = sorted(set(b.cohorts) - set(a.cohorts)), sorted(set(a.cohorts) - set(b.cohorts))
        before_text = ", ".join(a.cohorts) or "all cohorts"
        after_text = ", ".join(b.cohorts) or "all cohorts"
        detail = "; ".join(
            ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
        )
        changes.append(
            Change(
                "cohorts", f"cohorts changed: {before_text} → {after_text} ({detail})", list(a.cohorts), list(b.cohorts)
            )
        )
    if " ".join(a.rule.split()) != " ".join(b.rule.split()):
        changes.extend(rule_changes(a.rule, b.rule, variables))
    if " ".join(a.text.split()) != " ".join(b.text.split()):
        changes.append(Change("text", "protocol text changed", words(a.text, b.text), None))
    if a.section != b.section:
        changes.append(Change("section", f"section: {a.section} → {b.section}", a.section, b.section))
    if " ".join(a.notes.split()) != " ".join(b.notes.split()):
        changes.append(Change("notes", "notes changed", words(a.notes, b.notes), None))
    return changes


# Every field of a variable but its name, which is how variables are matched.
_VARIABLE_FIELDS = tuple(f.name for f in fields(VariableDef) if f.name != "name")


def _variable_changes(a: VariableDef, b: VariableDef) -> list[Change]:
    changes = []
    for name in _VARIABLE_FIELDS:
        old, new = getattr(a, name), getattr(b, name)
        if old == new:
            continue
        if name == "coding":
            old, new = [str(c) for c in old], [str(c) for c in new]
        if name in ("units", "codes", "coding"):
            added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else []
            )
            word = {"units": "accepted units", "codes": "codes", "coding": "EHR codes"}[name]
            text = f"{word}: {'; '.join(parts) or 'reordered'}"
            changes.append(Change(name, text, list(old), list(new)))
        elif name in ("minimum", "maximum"):
            changes.append(Change("range", f"plausible {name}: {_show(old)} → {_show(new)}", old, new))
        else:
            changes.append(Change(name, f"{name}: {_show(old)} → {_show(new)}", old, new))
    return changes


def _value_set_changes(a: ValueSetDef, b: ValueSetDef) -> list[Change]:
    """A value set edited: codes added or removed (each named), and any other field."""
    changes = []
    if a.codes != b.codes:
        added, removed = sorted(set(b.codes) - set(a.codes)), sorted(set(a.codes) - set(b.codes))
        parts = ([f"added {', '.join(added)}"] if added else []) + (
            [f"removed {', '.join(removed)}"] if removed else []
        )
        changes.append(Change("codes", f"codes: {'; '.join(parts) or 'reordered'}", list(a.codes), list(b.codes)))
    for name in ("label", "system", "half_life", "help"):
        old, new = getattr(a, name), getattr(b, name)
        if old != new:
            changes.append(Change(name, f"{name.replace('_', ' ')}: {_show(old)} → {_show(new)}", old, new))
    return changes


def _show(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def diff(before: ProtocolDef, after: ProtocolDef) -> ProtocolDiff:
    """Every difference between two versions, matched by criterion code and variable name."""
    variables = {v.name: v for v in after.variables}
    criteria = _match(
        {c.code: c for c in before.criteria},
        {c.code: c for c in after.criteria},
        lambda a, b: _criterion_changes(a, b, variables),
    )
    changed_variables = _match(
        {v.name: v for v in before.variables}, {v.name: v for v in after.variables}, _variable_changes
    )
    cohorts = _match(
        {c.code: c for c in before.cohorts},
        {c.code: c for c in after.cohorts},
        lambda a, b: [Change("label", f"label: {a.label} → {b.label}", a.label, b.label)] if a.label != b.label else [],
    )
    value_sets = _match(
        {v.name: v for v in before.value_sets}, {v.name: v for v in after.value_sets}, _value_set_changes
    )
    return ProtocolDiff(after.protocol, before.version, after.version, criteria, changed_variables, cohorts, value_sets)


def _match(before: dict[str, Any], after: dict[str, Any], compare) -> list[ItemDiff]:
    out: list[ItemDiff] = []
    for key, old in before.items():
        if key not in after:
            out.append(ItemDiff(key, "removed", [Change("removed", "removed")], before=asdict(old)))
    for key, new in after.items():
        if key not in before:
            out.append(ItemDiff(key, "added", [Change("added", "added")], after=asdict(new)))
        else:
            changes = compare(before[key], new)
            if changes:
                out.append(ItemDiff(key, "changed", changes, before=asdict(before[key]), after=asdict(new)))
    order = list(before) + [k for k in after if k not in before]
    return sorted(out, key=lambda item: order.index(item.key))
