"""Which input variables can matter to a cohort's decision, and under which earlier answers.

A screening form built from the whole data dictionary asks for every cohort's data.
This module reads the compiled rules (never a hand-kept list) to find, for a cohort:

- the input variables some applicable criterion can read at all (through named
  conditions, derived variables and computed thresholds): the others are not asked;
- for each of those, its *guards*: the earlier answers under which it cannot change
  any outcome. A variable inside `all(a, b)` cannot matter once `a` is false; inside
  `any(a, b)` (`if … then`, `unless`, `or`) once `a` is true. Kleene logic makes this
  exact: a definite false (true) sibling settles `all` (`any`) whatever the rest is.

Guards only use boolean and code answers that come *earlier* in the form, compared
with a constant, so a page can evaluate them as the screener types, and hiding a
variable depends only on what is already answered. A guard that is false on fewer
answers is false on more (Kleene logic is monotone), so hiding every variable whose
guards all hold leaves every outcome unchanged (tested as a property).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules.compiler import CompiledProtocol
from rules.dictionary import DataDictionary, Variable
from rules.ir import Node, Test, evaluate

_GUARD_TYPES = ("boolean", "code")


@dataclass(frozen=True)
class Guard:
    """`node` evaluating to `kills` makes the guarded occurrence irrelevant."""

    node: Node
    kills: bool


Occurrence = tuple[Guard, ...]  # one place a variable is read; it matters there unless a guard kills


def input_sections(dictionary: DataDictionary) -> list[tuple[str, list[Variable]]]:
    """Input variables grouped by section, in dictionary order: the form's order."""
    grouped: dict[str, list[Variable]] = {}
    for variable in dictionary.variables.values():
        if variable.builtin or variable.is_derived or variable.companion_of:
            continue
        grouped.setdefault(variable.definition.section or "Other", []).append(variable)
    return list(grouped.items())


@dataclass(frozen=True)
class Relevance:
    """The variables a cohort's criteria can read, in form order, and where each is read."""

    order: tuple[str, ...]
    occurrences: Mapping[str, tuple[Occurrence, ...]]

    def used(self, name: str) -> bool:
        return name in self.occurrences

    def conditional(self, name: str) -> bool:
        """Asked only when earlier answers make it matter."""
        return self.used(name) and all(self.occurrences[name])

    def hidden(self, answers: Mapping[str, Any]) -> set[str]:
        """The used variables that cannot change any outcome given the answers to earlier ones.

        `answers` are canonical values (booleans, codes). An answer to a hidden variable is
        ignored when deciding later ones, as the page does."""
        shown: dict[str, Any] = {}
        hidden: set[str] = set()
        for name in self.order:
            if name not in self.occurrences:
                continue
            if any(all(evaluate(g.node, shown) is not g.kills for g in occ) for occ in self.occurrences[name]):
                if name in answers:
                    shown[name] = answers[name]
            else:
                hidden.add(name)
        return hidden

    def asked(self, answers: Mapping[str, Any]) -> set[str]:
        """The used variables a form asks for given the earlier answers, as the page's script shows them.

        Stricter than not `hidden`: a follow-up waits until its earlier question is answered the way
        that makes it matter (the date of the last G-CSF once one was given), so an unanswered earlier
        question keeps it back; the decision then names that earlier question as missing."""
        shown: dict[str, Any] = {}
        asked: set[str] = set()
        for name in self.order:
            occurrences = self.occurrences.get(name, ())
            if any(all(evaluate(g.node, shown) is (not g.kills) for g in occ) for occ in occurrences):
                asked.add(name)
                if name in answers:
                    shown[name] = answers[name]
        return asked

    def show_when(self, name: str) -> list[list[dict[str, Any]]] | None:
        """The guards as data for the page's script; None when the variable is always asked."""
        occurrences = self.occurrences.get(name, ())
        if not occurrences or not all(occurrences):
            return None
        return [[{"node": _as_data(g.node), "kills": g.kills} for g in occ] for occ in occurrences]


def relevance(compiled: CompiledProtocol, cohort: str | None, criterion: str | None = None) -> Relevance:
    """Where each input variable is read by the criteria that apply to `cohort` (None: a trial without cohorts).

    With `criterion`: by that criterion alone, to say what could still settle it."""
    order = tuple(v.name for _, variables in input_sections(compiled.dictionary) for v in variables)
    walker = _Walker(compiled, {name: i for i, name in enumerate(order)})
    for item in compiled.criteria:
        if (cohort is None or item.applies_to(cohort)) and criterion in (None, item.code):
            walker.walk(item.ir, ())
    occurrences = {name: tuple(dict.fromkeys(found)) for name, found in walker.found.items()}
    # An occurrence without guards makes the others moot: the variable is always asked.
    occurrences = {name: ((),) if () in occ else occ for name, occ in occurrences.items()}
    return Relevance(order, occurrences)


class _Walker:
    def __init__(self, compiled: CompiledProtocol, position: Mapping[str, int]) -> None:
        self.compiled = compiled
        self.variables = compiled.dictionary.variables
        self.computed = {c.field: c for c in compiled.computed}
        self.position = position
        self.found: dict[str, list[Occurrence]] = {}
        self._entered: set[str] = set()

    def walk(self, node: Node, guards: tuple[Guard, ...]) -> None:
        if isinstance(node, Test):
            for name in {node.field, *(f for f in (node.other, node.basis) if f)}:
                self._read(name, guards)
            return
        for i, item in enumerate(node.items):
            siblings = node.items[:i] + node.items[i + 1 :]
            if node.op == "all":
                extra = tuple(Guard(s, False) for s in siblings)
            elif node.op == "any":
                extra = tuple(Guard(s, True) for s in siblings)
            else:  # not: the same question; at_least: no single sibling settles it
                extra = ()
            self.walk(item, guards + extra)

    def _read(self, name: str, guards: tuple[Guard, ...]) -> None:
        """Record that `name` is read under `guards`, following it back to the inputs it is made of."""
        if name in self.computed:
            field = self.computed[name]
            for source in (field.source, field.reference):
                if source:
                    self._read(source, guards)
            return
        variable = self.variables.get(name)
        if variable is None or variable.builtin:
            return
        if variable.companion_of:
            self._read(variable.companion_of, guards)
            return
        if variable.derivation is not None:
            for source in variable.derivation.inputs:
                self._read(source, guards)
            return
        if name in self.compiled.conditions:
            key = f"{name}:{id(guards)}"
            if key not in self._entered:  # conditions are acyclic; this only avoids repeated work
                self._entered.add(key)
                self.walk(self.compiled.conditions[name].rule.ir, guards)
            return
        usable = tuple(g for g in guards if self._usable(g.node, name))
        self.found.setdefault(name, []).append(usable)

    def _usable(self, node: Node, before: str) -> bool:
        """A guard the page can evaluate: constant comparisons of earlier boolean or code answers."""
        tests = list(_tests(node))
        return all(
            t.other is None
            and t.op in ("==", "!=")
            and t.value is not None
            and t.field in self.position
            and self.position[t.field] < self.position[before]
            and self.variables[t.field].type in _GUARD_TYPES
            for t in tests
        )


def _tests(node: Node) -> Iterable[Test]:
    if isinstance(node, Test):
        yield node
    else:
        for item in node.items:
            yield from _tests(item)


def _as_data(node: Node) -> dict[str, Any]:
    if isinstance(node, Test):
        return {"field": node.field, "op": node.op, "value": node.value}
    item: dict[str, Any] = {"op": node.op, "items": [_as_data(i) for i in node.items]}
    if node.op == "at_least":
        item["count"] = node.count
    return item
