"""Plan how a criterion's condition tree reaches the engine: inline, or through sub-condition facts.

A condition is compiled inline into each outcome rule (pass, fail, unknown) while that rule
stays small. When it would not (an `at least 4 of` eleven items is 330 combinations; an `or`
of fifty tests needs more expression slots than the engine has), the planner does what a
forward-chaining engine is for: a sub-condition gets rules of its own, one per Kleene value,
which fire at an earlier stage and record T, F or U in a field of the next stage's fact; the
parent matches that field. An `at least k of` then counts its items' recorded values instead
of enumerating combinations. Each rule stays within the budget whatever the protocol's size,
so nothing that compiles can be refused by the engine when a subject is decided.

Planning is bottom-up and greedy: the largest sub-group is given its own rules first, and a
group of plain tests too wide for one rule is cut into chunks. Small conditions stay inline,
so protocols that fit today fire no more rules than before.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rules import conditions
from rules.conditions import Counted, Decided, Planned
from rules.ir import Group, Node, Test

CHUNK = 8  # tests per sub-condition when a flat group is cut


@dataclass(frozen=True)
class Budget:
    """What one engine rule may hold: far enough below the engine's limits to be safe."""

    slots: int  # expression slots per rule (the engine's fixed array per rule)
    tests: int  # comparisons per rule
    nesting: int  # and/or depth per rule


@dataclass(frozen=True)
class SubCondition:
    """A sub-condition with rules of its own, deciding `field` at stage offset `level`."""

    field: str
    node: Planned
    level: int
    owner: str  # the criterion code or the named condition it serves, for explanations
    cohorts: tuple[str, ...] = ()  # decided only for these cohorts (empty: for all)
    named: bool = False  # a named condition: True / False / absent, like a submitted yes/no


@dataclass(frozen=True)
class Tally:
    """Counts of an `at least k of`'s items, added up as the stage at offset `level` is asserted."""

    true_field: str
    possible_field: str
    items: tuple[str, ...]
    level: int


@dataclass
class Planner:
    """Plans every condition of one protocol, so sub-condition fields are numbered once."""

    budget: Budget
    field_levels: dict[str, int] = field(default_factory=dict)  # fields that appear after the base stage
    subconditions: list[SubCondition] = field(default_factory=list)
    tallies: list[Tally] = field(default_factory=list)
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- levels --------------------------------------------------------------------------------

    def level(self, node: Planned) -> int:
        """The stage offset from which every field the node reads exists."""
        if isinstance(node, Test):
            return max((self.field_levels.get(f, 0) for f in node.fields), default=0)
        if isinstance(node, Decided):
            return self.field_levels[node.field]
        if isinstance(node, Counted):
            return self.field_levels[node.true_field]
        return max((self.level(item) for item in node.items), default=0)

    # -- planning ------------------------------------------------------------------------------

    def plan(self, node: Node, owner: str, cohorts: tuple[str, ...] = ()) -> Planned:
        """The node rewritten so that each of its outcome conditions fits one engine rule."""
        if isinstance(node, Test):
            return node
        items = [self.plan(item, owner, cohorts) for item in node.items]
        # A planned group is an ir.Group whose items may also be Decided/Counted: same shape, wider items.
        group = Group(node.op, tuple(items), node.count, node.style)  # type: ignore[arg-type]
        if node.op == "at_least" and _combinations(group) > self.budget.tests:
            return self.count(tuple(self.decide(item, owner, cohorts) for item in items), node.count)
        if self.fits(group):
            return group
        if node.op == "at_least":
            fields = tuple(self.decide(item, owner, cohorts) for item in items)
            return self.count(fields, node.count)
        if node.op == "not":
            return Group("not", (Decided(self.decide(items[0], owner, cohorts)),), style=node.style)  # type: ignore[arg-type]
        return self._narrow(group, owner, cohorts)

    def _narrow(self, group: Group, owner: str, cohorts: tuple[str, ...]) -> Planned:
        """An and/or made to fit: its largest sub-groups decided apart first, then chunks of tests."""
        while not self.fits(group):
            nested = [item for item in group.items if isinstance(item, Group)]
            if nested:
                widest = max(nested, key=self.cost)
                items: tuple[Planned, ...] = tuple(
                    Decided(self.decide(i, owner, cohorts)) if i is widest else i for i in group.items
                )
            else:
                items = self._chunks(group, owner, cohorts)
            group = Group(group.op, items, group.count, group.style)  # type: ignore[arg-type]
        return group

    def _chunks(self, group: Group, owner: str, cohorts: tuple[str, ...]) -> tuple[Planned, ...]:
        size = CHUNK
        while True:
            chunks = [group.items[i : i + size] for i in range(0, len(group.items), size)]
            pieces = [Group(group.op, chunk, style=group.style) for chunk in chunks]
            if all(self.fits(piece) for piece in pieces) or size == 1:
                break
            size //= 2
        return tuple(
            piece.items[0] if len(piece.items) == 1 else Decided(self.decide(piece, owner, cohorts)) for piece in pieces
        )

    def decide(self, node: Planned, owner: str, cohorts: tuple[str, ...] = (), name: str | None = None) -> str:
        """Give a planned node rules of its own; the field that will hold its value."""
        if isinstance(node, Decided) and name is None:
            return node.field
        target = name or f"_n{next(self._numbers)}"
        level = self.level(node)
        self.subconditions.append(SubCondition(target, node, level, owner, cohorts, named=name is not None))
        self.field_levels[target] = level + 1
        return target

    def count(self, items: tuple[str, ...], needed: int) -> Counted:
        number = next(self._numbers)
        true_field, possible_field = f"_n{number}_true", f"_n{number}_possible"
        level = max(self.field_levels[item] for item in items)
        self.tallies.append(Tally(true_field, possible_field, items, level))
        self.field_levels[true_field] = self.field_levels[possible_field] = level
        return Counted(true_field, possible_field, needed, items)

    # -- budget --------------------------------------------------------------------------------

    def outcome_conditions(self, node: Planned) -> list[conditions.Condition]:
        return [conditions.definitely(node, True), conditions.definitely(node, False), conditions.unknown(node)]

    def fits(self, node: Planned, guard: int = 4) -> bool:
        """Whether each outcome rule of the node fits, leaving `guard` slots for the rule's own `$and` and
        its cohort test."""
        for condition in self.outcome_conditions(node):
            if conditions.slots(condition) + guard > self.budget.slots:
                return False
            if conditions.size(condition) > self.budget.tests or conditions.nesting(condition) > self.budget.nesting:
                return False
        return True

    def cost(self, node: Planned) -> int:
        return max(conditions.slots(c) + conditions.size(c) for c in self.outcome_conditions(node))


def _combinations(group: Group) -> int:
    """How many alternatives an inline `at least k of n` would enumerate (to stop before building them)."""
    n, k = len(group.items), group.count
    return max(math.comb(n, k), math.comb(n, n - k + 1)) if 1 <= k <= n else 0


def tally(values: dict[str, Any], tallies: Iterable[Tally]) -> None:
    """Add up the recorded values of each `at least k of`'s items (absent items: not decided here)."""
    for counted in tallies:
        recorded = [values.get(item) for item in counted.items]
        if None in recorded:
            continue
        values[counted.true_field] = sum(1 for v in recorded if v == conditions.TRUE)
        values[counted.possible_field] = sum(1 for v in recorded if v != conditions.FALSE)


def named_value(value: str) -> bool | None:
    """A named condition's recorded value as the yes/no a criterion reads (None: unknown, left absent)."""
    return {conditions.TRUE: True, conditions.FALSE: False}.get(value)
