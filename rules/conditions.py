"""Lower IR nodes to durable-rules conditions, one per outcome.

Kleene logic is compiled, not interpreted: for a node we build four
conditions, "definitely true", "definitely false", "not definitely true" and
"not definitely false". A criterion's unknown rule is then the conjunction of
the last two, so every outcome is decided by the engine, and a definite
failure is never hidden by missing data.

Two engine facts shape the output: a comparison whose right side is
arithmetic over a *missing* field still matches, so every test is guarded by
`$ex` on all its fields; and `$neq` on a missing field does not match, so a
missing field is always spelled out with `$nex`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

from rules.ir import NEGATED, Group, Test

Condition = dict[str, Any]

_OPERATOR_KEYS = {">=": "$gte", "<=": "$lte", ">": "$gt", "<": "$lt", "!=": "$neq"}


def _compare(test: Test, op: str) -> Condition:
    operand: Any = test.value if test.other is None else {"$m": test.other}
    if op == "==":
        return {test.field: operand}
    return {_OPERATOR_KEYS[op]: {test.field: operand}}


def _group(key: str, conditions: list[Condition]) -> Condition:
    """A flat `$and`/`$or`: nested groups of the same kind are merged, each group costs engine slots."""
    flat: list[Condition] = []
    for condition in conditions:
        flat.extend(condition[key] if set(condition) == {key} else [condition])
    return flat[0] if len(flat) == 1 else {key: flat}


def _all(conditions: list[Condition]) -> Condition:
    return _group("$and", conditions)


def _any(conditions: list[Condition]) -> Condition:
    return _group("$or", conditions)


TRUE, FALSE, UNKNOWN = "T", "F", "U"


@dataclass(frozen=True)
class Decided:
    """A sub-condition the engine decided at an earlier stage: `field` holds T, F or U.

    Exactly one of the sub-condition's three rules fires, so the field always exists at the
    stages after it, and `$neq` (which never matches a missing field) is safe on it.
    """

    field: str


@dataclass(frozen=True)
class Counted:
    """An `at least k of` whose items the engine decided at earlier stages.

    `true_field` holds how many items are definitely true and `possible_field` how many are
    true or unknown; the driver adds them up as it asserts the stage (plain arithmetic over
    truths the engine decided), and the comparisons with k are the engine's.
    """

    true_field: str
    possible_field: str
    count: int
    items: tuple[str, ...]  # the Decided fields counted


Planned = Test | Group | Decided | Counted


def definitely(node: Planned, polarity: bool) -> Condition:
    """Matches exactly when the node's Kleene value is `polarity`."""
    if isinstance(node, Decided):
        return {node.field: TRUE if polarity else FALSE}
    if isinstance(node, Counted):
        if polarity:
            return {"$gte": {node.true_field: node.count}}
        return {"$lt": {node.possible_field: node.count}}
    if isinstance(node, Test):
        exists = [{"$ex": {f: 1}} for f in node.fields]
        op = node.op if polarity else NEGATED[node.op]
        return _all([*exists, _compare(node, op)])
    if node.op == "not":
        return definitely(node.items[0], not polarity)
    if node.op in ("all", "any"):
        parts = [definitely(item, polarity) for item in node.items]
        conjunctive = (node.op == "all") == polarity
        return _all(parts) if conjunctive else _any(parts)
    needed = node.count if polarity else len(node.items) - node.count + 1
    return _any([_all([definitely(i, polarity) for i in combo]) for combo in combinations(node.items, needed)])


def possibly(node: Planned, polarity: bool) -> Condition:
    """Matches exactly when the node's value is `polarity` or unknown (not definitely the opposite)."""
    if isinstance(node, Decided):
        return {"$neq": {node.field: FALSE if polarity else TRUE}}
    if isinstance(node, Counted):
        if polarity:
            return {"$gte": {node.possible_field: node.count}}
        return {"$lt": {node.true_field: node.count}}
    if isinstance(node, Test):
        missing = [{"$nex": {f: 1}} for f in node.fields]
        op = node.op if polarity else NEGATED[node.op]
        return _any([*missing, _compare(node, op)])
    if node.op == "not":
        return possibly(node.items[0], not polarity)
    if node.op in ("all", "any"):
        parts = [possibly(item, polarity) for item in node.items]
        conjunctive = (node.op == "all") == polarity
        return _all(parts) if conjunctive else _any(parts)
    needed = node.count if polarity else len(node.items) - node.count + 1
    return _any([_all([possibly(i, polarity) for i in combo]) for combo in combinations(node.items, needed)])


def unknown(node: Planned) -> Condition:
    """Matches exactly when missing data leaves the node undecided."""
    if isinstance(node, Decided):
        return {node.field: UNKNOWN}
    return _all([possibly(node, True), possibly(node, False)])


def slots(condition: Any) -> int:
    """Engine expression slots a condition takes: 2 per `$and`/`$or`, 1 per field-relative test.

    durable-rules keeps these in one fixed array per rule (MAX_SEQUENCE_EXPRESSIONS = 32 in
    rete.h) and refuses the ruleset with error 113 when it fills.
    """
    if isinstance(condition, list):
        return sum(slots(c) for c in condition)
    if not isinstance(condition, dict):
        return 0
    total = 0
    for key, value in condition.items():
        if key in ("$and", "$or"):
            total += 2 + slots(value)
        elif isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            total += 1  # {"$lte": {"alt": {"$mul": ...}}}: an expression over another field
        elif isinstance(value, dict) and "$m" in value:
            total += 1
    return total


def size(condition: Any) -> int:
    """How many tests a condition holds: the engine's work per fact grows with it."""
    if isinstance(condition, dict):
        return sum(size(v) for k, v in condition.items() if k in ("$and", "$or")) or 1
    if isinstance(condition, list):
        return sum(size(c) for c in condition)
    return 1


def nesting(condition: Any) -> int:
    """How deeply `$and`/`$or` nest: the engine's traversal depth."""
    if isinstance(condition, dict):
        inner = [nesting(v) for k, v in condition.items() if k in ("$and", "$or")]
        return 1 + max(inner) if inner else 0
    if isinstance(condition, list):
        return max((nesting(c) for c in condition), default=0)
    return 0


def fields_read(condition: Any) -> set[str]:
    """The fact fields a condition reads (tests, `$ex`/`$nex`, `$m` references): what the fact must carry."""
    found: set[str] = set()
    if isinstance(condition, list):
        for item in condition:
            found |= fields_read(item)
    elif isinstance(condition, dict):
        for key, value in condition.items():
            if key == "$m":
                found.add(value)
            elif key.startswith("$"):
                found |= fields_read(value)
            else:
                found.add(key)
                found |= fields_read(value)
    return found
