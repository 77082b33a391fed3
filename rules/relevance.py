"""Which input variables can matter to a cohort's decision, and under which earlier answers.

A screening form built from the whole data dictionary asks for every cohort's data.
This module reads the compiled rules (never a hand-kept list) to find, for a cohort:

- the input variables some applicable criterion can read at all (through named
  conditions, derived variables and computed thresholds): the others are not asked;
- for each of those, its *guards*: the earlier answers under which it cannot change
  any outcome. A variable inside `all(a, b)` cannot matter once `a` is false; inside
  `any(a, b)` (`if … then`, `unless`, `or`) once `a` is true. Kleene logic makes this
  exact: a definite false (true) sibling settles `all` (`any`) whatever the rest is.

Guards only use answers that come *earlier* in the form, so hiding a variable depends
only on what is already answered, and only tests a page can evaluate as the screener
types: a boolean or code compared with a constant, a number compared with a constant
(in a unit the page converts by a factor), or a number compared with a multiple of its
own ULN/LLN (typed in the same unit), as in "the myopathy question only when ALT is
above 3 x ULN". A guard that is false on fewer
answers is false on more (Kleene logic is monotone), so hiding every variable whose
guards all hold leaves every outcome unchanged (tested as a property).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules import units
from rules.compiler import CompiledProtocol
from rules.dictionary import DataDictionary, Variable
from rules.errors import EligoError
from rules.ir import Node, Test, evaluate

_CHOICE_TYPES = ("boolean", "code")


@dataclass(frozen=True)
class Guard:
    """`node` evaluating to `kills` makes the guarded occurrence irrelevant.

    `waits`: the guard reads only yes/no and coded answers, so a form keeps the guarded question back
    until they are answered (a follow-up). A guard on a lab value only hides a question once the value
    settles it: a screener may well answer the question before the lab result arrives."""

    node: Node
    kills: bool
    waits: bool = True


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
    # `_alt_uln_x3` -> ("alt_uln", 3.0): the multiples of a ULN/LLN that guards compare with
    scales: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    # each guard's number variable -> {accepted unit: factor to its canonical unit}, for the page
    factors: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

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
                self._show(name, answers, shown)
            else:
                hidden.add(name)
        return hidden

    def _show(self, name: str, answers: Mapping[str, Any], shown: dict[str, Any]) -> None:
        """An asked variable's answer, its ULN/LLN and their multiples, as later guards read them."""
        for key in (name, f"{name}_uln", f"{name}_lln"):
            if key in answers:
                shown[key] = answers[key]
        for computed, (source, times) in self.scales.items():
            if source in shown and isinstance(shown[source], int | float):
                shown[computed] = units.tidy(shown[source] * times)

    def asked(self, answers: Mapping[str, Any], wait_for_labs: bool = False) -> set[str]:
        """The used variables a form asks for given the earlier answers, as the page's script shows them.

        Stricter than not `hidden`: a follow-up waits until its earlier question is answered the way
        that makes it matter (the date of the last G-CSF once one was given), so an unanswered earlier
        question keeps it back; the decision then names that earlier question as missing.
        `wait_for_labs`: a question guarded by a lab value waits for it too, as a list of what to
        collect says (the myopathy question once ALT is known to be above 3 x ULN)."""
        shown: dict[str, Any] = {}
        asked: set[str] = set()
        for name in self.order:
            occurrences = self.occurrences.get(name, ())
            if any(all(_lets_matter(g, evaluate(g.node, shown), wait_for_labs) for g in occ) for occ in occurrences):
                asked.add(name)
                self._show(name, answers, shown)
        return asked

    def show_when(self, name: str) -> list[list[dict[str, Any]]] | None:
        """The guards as data for the page's script; None when the variable is always asked."""
        occurrences = self.occurrences.get(name, ())
        if not occurrences or not all(occurrences):
            return None
        return [
            [{"node": _as_data(g.node, self.scales), "kills": g.kills, "waits": g.waits} for g in occ]
            for occ in occurrences
        ]


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
    return Relevance(order, occurrences, walker.scales, walker.factors)


class _Walker:
    def __init__(self, compiled: CompiledProtocol, position: Mapping[str, int]) -> None:
        self.compiled = compiled
        self.variables = compiled.dictionary.variables
        self.computed = {c.field: c for c in compiled.computed}
        self.position = position
        self.found: dict[str, list[Occurrence]] = {}
        self.scales: dict[str, tuple[str, float]] = {}
        self.factors: dict[str, dict[str, float]] = {}
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
        usable = tuple(Guard(g.node, g.kills, self._waits(g.node)) for g in guards if self._usable(g.node, name))
        self.found.setdefault(name, []).append(usable)

    def _usable(self, node: Node, before: str) -> bool:
        """A guard the page can evaluate, on answers that come before `before`."""
        return all(self._evaluable(t, before) for t in _tests(node))

    def _waits(self, node: Node) -> bool:
        return all(self.variables[t.field].type in _CHOICE_TYPES for t in _tests(node))

    def _evaluable(self, test: Test, before: str) -> bool:
        variable = self.variables.get(test.field)
        if variable is None or self.position.get(test.field, len(self.position)) >= self.position[before]:
            return False
        if variable.type in _CHOICE_TYPES:
            return test.other is None and test.op in ("==", "!=") and test.value is not None
        if variable.type != "number":
            return False
        if test.other is None:
            return isinstance(test.value, int | float) and self._factors(variable)
        scale = self.computed.get(test.other)
        companion = self.variables.get(scale.source) if scale is not None and scale.kind == "scale" else None
        if scale is None or companion is None or companion.companion_of != test.field:
            return False  # a threshold the page cannot work out (a window, a formula, another variable)
        self.scales[test.other] = (scale.source, scale.amount)
        return self._factors(variable)

    def _factors(self, variable: Variable) -> bool:
        """Record the factor from each accepted unit to the canonical one; False where one is not a factor."""
        found = {}
        for unit in variable.accepted_units:
            if unit == variable.unit:
                found[unit] = 1.0
                continue
            try:
                conversion = units.conversion(
                    unit, variable.unit, variable.definition.molar_mass, variable.definition.conversion
                )
            except EligoError:
                return False
            if not conversion.proportional:
                return False
            found[unit] = conversion.scale
        self.factors[variable.name] = found
        return True


def _lets_matter(guard: Guard, truth: bool | None, wait_for_labs: bool = False) -> bool:
    return truth is (not guard.kills) or (truth is None and not (guard.waits or wait_for_labs))


def _tests(node: Node) -> Iterable[Test]:
    if isinstance(node, Test):
        yield node
    else:
        for item in node.items:
            yield from _tests(item)


def _as_data(node: Node, scales: Mapping[str, tuple[str, float]]) -> dict[str, Any]:
    if isinstance(node, Test):
        if node.other is not None:
            source, times = scales[node.other]
            return {"field": node.field, "op": node.op, "other": source, "times": times}
        return {"field": node.field, "op": node.op, "value": node.value}
    item: dict[str, Any] = {"op": node.op, "items": [_as_data(i, scales) for i in node.items]}
    if node.op == "at_least":
        item["count"] = node.count
    return item
