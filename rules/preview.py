"""The sentence a checked rule stands for, shown to its writer while typing.

A screener reads each criterion as an explanation (rules/explain.py): the
variable's label, the relation in words ("is at least", "is below") and the
threshold as written, with the canonical value beside it when the unit differs.
The writer's preview uses the same words, from the same tables, over the rule
alone (no subject yet), so what the writer approves is what screeners will read.
"""

from __future__ import annotations

from collections.abc import Iterable

from rules.checker import CheckedRule, ComputedField
from rules.dictionary import DataDictionary
from rules.explain import _RELATION, number
from rules.ir import Group, Node, Test

_LEADS = {
    "inclusion": "Eligible only if",
    "exclusion": "Not eligible if",
    None: "True when",
}


def preview(checked: CheckedRule, dictionary: DataDictionary, kind: str | None) -> str:
    """One sentence: when the criterion is met (inclusion), excludes (exclusion) or holds (a named condition)."""
    writer = _Writer(dictionary, checked.computed)
    return f"{_LEADS.get(kind, _LEADS[None])} {writer.node(checked.ir)}."


class _Writer:
    def __init__(self, dictionary: DataDictionary, computed: Iterable[ComputedField]) -> None:
        self.dictionary = dictionary
        self.computed = {c.field: c for c in computed}

    def label(self, name: str) -> str:
        variable = self.dictionary.variables.get(name)
        return variable.label if variable is not None else name

    def node(self, node: Node) -> str:
        if isinstance(node, Test):
            return self.test(node, True)
        style = node.style or node.op
        if style.startswith("list:"):
            return self.history(node, style.partition(":")[2])
        if style in ("within", "window"):
            first: Test = node.items[0]  # type: ignore[assignment]
            return f"{self.label(first.field)} is {first.shown}"
        if style == "between":
            low, high = node.items
            return f"{self.label(low.field)} is between {low.shown} and {high.shown}"  # type: ignore[union-attr]
        if style == "in":
            first = node.items[0]  # type: ignore[assignment]
            codes = ", ".join(str(t.value) for t in node.items)  # type: ignore[union-attr]
            return f"{self.label(first.field)} is one of {codes}"
        if node.op == "not":
            return self.negated(node.items[0])
        if style in ("unless", "unless_excluded"):
            requirement = node.items[0]
            exception = node.items[1].items[0] if style == "unless_excluded" else node.items[1]  # type: ignore[union-attr]
            return f"{self.part(requirement)}, unless {self.part(exception)}"
        if style == "implies":
            condition = node.items[0].items[0]  # type: ignore[union-attr]
            return f"{self.part(node.items[1])}, where {self.part(condition)}"
        if node.op == "at_least":
            parts = "; ".join(self.part(i) for i in node.items)
            return f"{'any' if node.count == 1 else f'at least {node.count}'} of ({parts})"
        word = " and " if node.op == "all" else " or "
        return word.join(self.part(i) for i in node.items)

    def part(self, node: Node) -> str:
        """A node inside another: bracketed when it joins several conditions, so the grouping reads right."""
        text = self.node(node)
        if isinstance(node, Group) and node.op in ("all", "any") and node.style in ("and", "or", ""):
            return f"({text})"
        return text

    def negated(self, node: Node) -> str:
        if isinstance(node, Test):
            return self.test(node, False)
        if isinstance(node, Group) and node.style == "in":
            return f"{self.node(node).replace(' is one of ', ' is none of ')}"
        return f"not {self.part(node) if isinstance(node, Group) and node.op == 'not' else _bracket(self.node(node))}"

    def test(self, test: Test, holds: bool) -> str:
        variable = self.dictionary.variables.get(test.field)
        kind = variable.type if variable is not None else "number"
        label = self.label(test.field)
        if kind == "boolean":
            yes = bool(test.value) == holds if test.op == "==" else bool(test.value) != holds
            return f"{label}: {'yes' if yes else 'no'}"
        if kind == "code":
            equal = (test.op == "==") == holds
            return f"{label} is {'' if equal else 'not '}{test.value}"
        return f"{label} {_RELATION[test.op][0 if holds else 1]} {self.threshold(test)}"

    def threshold(self, test: Test) -> str:
        """As Explainer.threshold says it, without a subject's limits of normal."""
        if test.other is None:
            variable = self.dictionary.variables.get(test.field)
            unit = variable.unit if variable is not None else None
            canonical = f"{number(float(test.value))} {unit or ''}".strip()  # type: ignore[arg-type]
            same = test.shown.replace(" ", "") == canonical.replace(" ", "")
            return test.shown if same else f"{test.shown} ({canonical})"
        if test.basis in (f"{test.field}_uln", f"{test.field}_lln"):
            return test.shown
        return self.label(test.basis or test.other)

    def history(self, node: Group, quantifier: str) -> str:
        """A history test: which entries of the list, in which value set and window."""
        first = node
        while isinstance(first, Group):
            first = first.items[0]  # type: ignore[assignment]
        extra = self.computed.get(first.field)
        if extra is None:
            return first.shown
        value_set = self.dictionary.value_sets.get(extra.value_set)
        where = (value_set.definition.label if value_set is not None else extra.value_set) + first.shown.removeprefix(
            extra.value_set
        )
        entries = self.label(extra.source).lower()
        if quantifier == "no":
            return f"no {entries} in {where}"
        if quantifier == "count":
            return f"{_count(node)} {entries} in {where}"
        return f"any {entries} in {where}"


def _count(node: Group) -> str:
    """A count comparison in the words of its lowering: `at least 4`, `fewer than 4`, or both for `==`."""
    found: list[str] = []

    def walk(n: Node, negated: bool) -> None:
        if isinstance(n, Test):
            if n.field.endswith("_possible"):
                found.append(f"{'fewer than' if negated else 'at least'} {number(float(n.value))}")  # type: ignore[arg-type]
            return
        for item in n.items:
            walk(item, negated != (n.op == "not"))

    walk(node, False)
    return " and ".join(dict.fromkeys(found))


def _bracket(text: str) -> str:
    return text if text.startswith("(") else f"({text})"
