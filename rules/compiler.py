"""Compile a protocol version into one durable-rules ruleset.

The ruleset forward-chains in stages. The subject's inputs arrive as the
stage-0 fact; `derive:<variable>` rules fire when a derived variable's inputs
exist, and a low-priority `advance:<k>` rule then asserts the next stage's
fact carrying the new values. After the derivation stages come the stages of
sub-conditions (rules/planner.py): `node:<field>:<T|F|U>` rules decide a named
condition or a part of a large criterion, and what they record is in the next
stage's fact. Each criterion has three rules (`<code>:pass`, `:fail`,
`:unknown`), each guarded by its cohorts, at the first stage where everything
it reads exists; `not_applicable:<cohorts>` rules mark the criteria of other
cohorts.

The engine has hard limits that surface as crashes or cryptic error codes, so
every rule is planned to fit them, and what cannot fit is reported here in
words a protocol writer can act on: nothing that compiles is refused when a
subject is decided.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rules import conditions
from rules.checker import CheckedRule, ComputedField, check_rule
from rules.dictionary import DataDictionary
from rules.errors import EngineLimitError, ProtocolError, RuleErrors
from rules.expression import counted_back_from
from rules.ir import Node, depth, fields_of
from rules.limits import LIMITS
from rules.planner import Budget, Planner, SubCondition, Tally
from rules.protocol import CriterionDef, ProtocolDef

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./\-]*$")

# The engine's capacities come from the engine (rules.limits); the compiler stays below them and
# says so in words. Nesting is the compiler's own bound: deeper is unreadable, not unholdable.
MAX_NESTING = 24
ROUTE_FANOUT = 8  # bounds the tests one fact matches at once under any node (the engine's traversal stack)
ADVANCE_PRIORITY = 100
RESERVED_FIELDS = ("sid", "id", "t")
# One engine rule's share: tests per rule also bound the alternatives under one chain of tests
# (LIMITS.alpha_children) and the `$nex` tests (LIMITS.alpha_absence_tests) with room to spare.
BUDGET = Budget(slots=min(LIMITS.sequence_expressions, 256), tests=120, nesting=8)


_T = TypeVar("_T")


@dataclass(frozen=True)
class CompiledCriterion:
    definition: CriterionDef
    rule: CheckedRule

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def kind(self) -> str:
        return self.definition.kind

    @property
    def ir(self) -> Node:
        return self.rule.ir

    def applies_to(self, cohort: str | None) -> bool:
        return not self.definition.cohorts or cohort in self.definition.cohorts


@dataclass(frozen=True)
class NamedCondition:
    """A boolean variable defined by a rule: a sub-condition several criteria can reuse."""

    name: str
    rule: CheckedRule


@dataclass
class CompiledProtocol:
    """Everything needed to decide subjects under one protocol version; built once, shared."""

    definition: ProtocolDef
    dictionary: DataDictionary
    criteria: list[CompiledCriterion]
    computed: list[ComputedField]
    stages: int  # the index of the last stage
    ruleset: dict[str, Any] = field(repr=False)
    conditions: dict[str, NamedCondition] = field(default_factory=dict)  # in the order they are decided
    subconditions: list[SubCondition] = field(default_factory=list, repr=False)
    tallies: dict[int, list[Tally]] = field(default_factory=dict, repr=False)  # by the stage they are added up for
    stage_fields: tuple[frozenset[str], ...] = field(default=(), repr=False)  # what each stage's rules read
    # What the modules that decide and explain work out once per version (rules/explain.py's plans).
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def once(self, key: str, build: Callable[[], _T]) -> _T:
        """What `build` gives, worked out on first use and kept in `cache` under `key` for this version."""
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = build()
        return found

    @property
    def content_hash(self) -> str:
        return self.definition.content_hash

    @property
    def ruleset_name(self) -> str:
        return f"eligo_{self.content_hash[:20]}"

    @property
    def ruleset_json(self) -> str:
        return json.dumps(self.ruleset, sort_keys=True)

    @functools.cached_property
    def applicability(self) -> tuple[tuple[str, str | None], ...]:
        """Each criterion's code and the `not_applicable:` key of its cohorts (None: applies to all).

        Read for every subject decided, so worked out once."""
        return tuple((c.code, "+".join(c.definition.cohorts) if c.definition.cohorts else None) for c in self.criteria)

    @functools.cached_property
    def node_owners(self) -> dict[str, str]:
        """The criterion or named condition each sub-condition field serves: for tracing fired rules."""
        return {s.field: s.owner for s in self.subconditions}

    @functools.cached_property
    def named_fields(self) -> frozenset[str]:
        return frozenset(s.field for s in self.subconditions if s.named)

    @functools.cached_property
    def derivation_stages(self) -> int:
        """The last stage at which formulas and computed thresholds are still being derived."""
        return max(
            [self.stage_of(f.field) for f in self.computed]
            + [v.derivation.level for v in self.dictionary.derived]  # type: ignore[union-attr]
            + [0]
        )

    def criterion(self, code: str) -> CompiledCriterion:
        for criterion in self.criteria:
            if criterion.code == code:
                return criterion
        raise KeyError(code)

    def stage_of(self, name: str) -> int:
        """The stage at which a derived field first appears in the fact.

        A computed threshold (`3 x ULN`, a window's first day) is plain arithmetic on one value: the
        driver adds it to the fact its source arrives in (`thresholds`), so criteria on ULN multiples
        and windows decide on that same fact; the comparison stays the engine's."""
        variable = self.dictionary.variables.get(name)
        if variable is not None and variable.derivation is not None:
            return variable.derivation.level
        extra = self.computed_field(name)
        return self.stage_of(extra.source) if extra else 0

    @functools.cached_property
    def thresholds(self) -> dict[int, tuple[str, ...]]:
        """The computed thresholds to add to each stage's fact before it is asserted."""
        found: dict[int, list[str]] = {}
        for extra in self.computed:
            found.setdefault(self.stage_of(extra.field), []).append(extra.field)
        return {stage: tuple(names) for stage, names in found.items()}

    def computed_field(self, name: str) -> ComputedField | None:
        return self._computed_by_field.get(name)

    @functools.cached_property
    def _computed_by_field(self) -> dict[str, ComputedField]:
        """Looked up for every derived field of every subject, so indexed once."""
        return {c.field: c for c in self.computed}


def _stage(k: int) -> str:
    return f"stage{k}"


def compile_protocol(protocol: ProtocolDef) -> CompiledProtocol:
    """Validate every named condition and criterion and build the ruleset; raises with every problem found."""
    dictionary = DataDictionary(protocol, strict=False)
    problems: list[str] = list(dictionary.problems)  # reported with the rules' problems, all at once
    rule_errors: list[RuleErrors] = []
    named: dict[str, NamedCondition] = {}
    for variable in dictionary.variables.values():
        if variable.definition.condition is None:
            continue
        try:
            named[variable.name] = NamedCondition(
                variable.name,
                check_rule(variable.definition.condition, dictionary, f"variable {variable.name}", kind=None),
            )
        except RuleErrors as errors:
            rule_errors.append(errors)
    criteria: list[CompiledCriterion] = []
    for definition in protocol.criteria:
        if not CODE.match(definition.code):
            problems.append(f"criterion code `{definition.code}`: use letters, digits, `.`, `-` and `_`")
            continue
        try:
            checked = check_rule(definition.rule, dictionary, definition.code, kind=definition.kind)
        except RuleErrors as errors:
            rule_errors.append(errors)
            continue
        criteria.append(CompiledCriterion(definition, checked))
    ordered = _condition_order(named, problems)
    for variable in dictionary.derived:
        for name in sorted(set(variable.derivation.inputs) & set(named)):  # type: ignore[union-attr]
            problems.append(
                f"variable `{variable.name}`: its formula reads `{name}`, a named condition, which is decided"
                " after formulas; test the condition in the criterion instead"
            )
    if rule_errors:
        if len(rule_errors) == 1 and not problems:
            raise rule_errors[0]
        problems += [line for errors in rule_errors for line in errors.problems()]
    if problems:
        what = (
            "the data dictionary is not valid"
            if dictionary.problems and not rule_errors
            else "the protocol does not compile"
        )
        raise ProtocolError(what, problems)

    for name in ordered:
        dictionary.bind_condition(name, fields_of(named[name].rule.ir))
    # Dates counted back from the screening date, by a window or a formula, are never after it.
    by_formulas = frozenset().union(*(counted_back_from(v.derivation.expression) for v in dictionary.derived))  # type: ignore[union-attr]
    by_rules = frozenset().union(*(c.rule.looks_back for c in criteria), *(n.rule.looks_back for n in named.values()))
    dictionary.bind_looks_back(by_rules | (by_formulas - {"screening_date"}))
    rules = [*(n.rule for n in named.values()), *(c.rule for c in criteria)]
    computed = list({f.field: f for rule in rules for f in rule.computed}.values())
    compiled = CompiledProtocol(
        protocol, dictionary, criteria, computed, 0, {}, conditions={name: named[name] for name in ordered}
    )
    _check_depth(compiled)
    compiled.ruleset = _ruleset(compiled)
    _check_limits(compiled)
    return compiled


def _condition_order(named: dict[str, NamedCondition], problems: list[str]) -> list[str]:
    """Named conditions in an order where each comes after those it reads; a cycle is a problem."""
    ordered: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            problems.append(f"named conditions depend on each other in a cycle: {' -> '.join((*trail, name))}")
            return
        state[name] = "visiting"
        for used in sorted(fields_of(named[name].rule.ir) & set(named)):
            visit(used, (*trail, name))
        state[name] = "done"
        ordered.append(name)

    for name in named:
        visit(name, ())
    return ordered


def _ruleset(compiled: CompiledProtocol) -> dict[str, Any]:
    # Each rule goes to the first stage at which every field it reads exists: most criteria read
    # only submitted values and decide on the first fact, and later facts carry only the few fields
    # their rules read (compiled.stage_fields), so the engine parses each value once, not per stage.
    arrivals = {v.name: v.derivation.level for v in compiled.dictionary.derived}  # type: ignore[union-attr]
    arrivals |= {c.field: compiled.stage_of(c.field) for c in compiled.computed}
    planner = Planner(BUDGET, field_levels=arrivals)
    for name, condition in compiled.conditions.items():
        planner.decide(planner.plan(condition.rule.ir, name), name, name=name)
    planned = []
    for criterion in compiled.criteria:
        cohorts = criterion.definition.cohorts
        node = planner.plan(criterion.ir, criterion.code, cohorts)
        planned.append((criterion, node, planner.level(node)))
    compiled.subconditions = planner.subconditions
    last = max(
        [level for _, _, level in planned]
        + [s.level for s in planner.subconditions]
        + [compiled.derivation_stages if planner.subconditions or planned else 0]
    )
    compiled.stages = last
    compiled.tallies = {}
    for counted in planner.tallies:
        compiled.tallies.setdefault(counted.level, []).append(counted)

    # Conditions per stage, each without its stage test; routed and assembled at the end.
    stages: list[dict[str, list[dict[str, Any]]]] = [{} for _ in range(last + 1)]
    for variable in compiled.dictionary.derived:
        derivation = variable.derivation
        stages[derivation.level - 1][f"derive:{variable.name}"] = [{"$ex": {i: 1}} for i in derivation.inputs]  # type: ignore[union-attr]

    cohort_sets = sorted({c.definition.cohorts for c in compiled.criteria if c.definition.cohorts})
    for cohorts in cohort_sets:
        stages[0][f"not_applicable:{'+'.join(cohorts)}"] = [{"$neq": {"cohort": c}} for c in cohorts]
    for sub in planner.subconditions:
        guard = _cohort_guard(sub.cohorts)
        recorded = planner.outcome_conditions(sub.node)
        for value, test in zip((conditions.TRUE, conditions.FALSE, conditions.UNKNOWN), recorded, strict=True):
            stages[sub.level][f"node:{sub.field}:{value}"] = [*guard, test]
    for criterion, node, level in planned:
        guard = _cohort_guard(criterion.definition.cohorts)
        holds = criterion.kind == "inclusion"
        decided = {
            "pass": conditions.definitely(node, holds),
            "fail": conditions.definitely(node, not holds),
            "unknown": conditions.unknown(node),
        }
        for outcome, test in decided.items():
            stages[level][f"{criterion.code}:{outcome}"] = [*guard, test]

    rules: dict[str, Any] = {}
    for k, stage_rules in enumerate(stages):
        test = {"t": _stage(k)}
        levels = _route_levels(len(stage_rules))
        for index, (name, parts) in enumerate(stage_rules.items()):
            rules[name] = _rule([test, *_route(index, levels), *parts])
        if k < last:
            rules[f"advance:{k}"] = _rule([test], priority=ADVANCE_PRIORITY)
    compiled.stage_fields = tuple(
        frozenset(f for name, parts in stage_rules.items() for f in conditions.fields_read(parts)) | {"cohort"}
        for stage_rules in stages
    )
    return rules


def _cohort_guard(cohorts: tuple[str, ...]) -> list[dict[str, Any]]:
    return [conditions._any([{"cohort": c} for c in cohorts])] if cohorts else []


def _route_levels(count: int) -> int:
    levels = 0
    while ROUTE_FANOUT**levels < count:
        levels += 1
    return levels


def _route(index: int, levels: int) -> list[dict[str, Any]]:
    """Always-true, distinct tests that place a rule in a tree of at most ROUTE_FANOUT branches per node.

    The engine pushes every matching child of an alpha node onto a fixed 64-entry stack; with
    all criteria hanging off the one `t == stage` node, a subject with many values fills it
    (error 303). Routing bounds the fan-out at every node whatever the protocol's size.
    """
    route = []
    for level in range(levels):
        prefix = index // ROUTE_FANOUT ** (levels - level - 1)
        route.append({"$neq": {"t": f"route{level}_{prefix}"}})
    return route


def _rule(parts: list[dict[str, Any]], priority: int | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"all": [{"m": conditions._all(parts)}]}
    if priority is not None:
        rule["pri"] = priority
    return rule


def _check_depth(compiled: CompiledProtocol) -> None:
    for criterion in compiled.criteria:
        if depth(criterion.ir) > MAX_NESTING:
            raise EngineLimitError(
                f"criterion {criterion.code} nests and/or/not {depth(criterion.ir)} levels deep (at most"
                f" {MAX_NESTING}): name a part of it as a condition variable in the data dictionary and use that."
            )


def _check_limits(compiled: CompiledProtocol) -> None:
    fields = (
        len(compiled.dictionary.variables)
        + len(compiled.computed)
        + len(compiled.subconditions)
        + 2 * sum(len(t) for t in compiled.tallies.values())
        + len(RESERVED_FIELDS)
    )
    if fields > LIMITS.fact_properties:
        raise EngineLimitError(
            f"the protocol needs {fields} fields per subject (variables, limits of normal, computed"
            f" thresholds and sub-conditions); the engine holds at most {LIMITS.fact_properties}."
            " Remove unused variables, or name a large shared part of several criteria once as a condition"
            " variable."
        )
    for name, rule in compiled.ruleset.items():
        used = conditions.slots(rule["all"][0]["m"])
        if used > LIMITS.sequence_expressions:  # the planner keeps rules below this: a bug, never the writer's
            raise EngineLimitError(f"engine rule {name} needs {used} expression slots, more than the engine holds")
    if len(compiled.ruleset) > LIMITS.rules:
        raise EngineLimitError(
            f"the protocol compiles to {len(compiled.ruleset)} engine rules, above the engine's limit of"
            f" {LIMITS.rules}: remove criteria or split the protocol."
        )
