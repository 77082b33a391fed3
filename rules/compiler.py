"""Compile a protocol version into one durable-rules ruleset.

The ruleset forward-chains in stages. The subject's inputs arrive as the
stage-0 fact; `derive:<variable>` rules fire when a derived variable's inputs
exist, and a low-priority `advance:<k>` rule then asserts the next stage's
fact carrying the new values. Criterion rules match the last stage only, so a
criterion never sees a fact whose derived values are still to come. Each
criterion has three rules (`<code>:pass`, `:fail`, `:unknown`), each guarded by
its cohorts; `not_applicable:<cohorts>` rules mark the criteria of other cohorts.

The engine has hard limits that surface as crashes or cryptic error codes, so
they are checked here and reported in words a protocol writer can act on.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rules import conditions
from rules.checker import CheckedRule, ComputedField, check_rule
from rules.dictionary import DataDictionary
from rules.errors import EngineLimitError, ProtocolError, RuleErrors
from rules.ir import Node, depth
from rules.protocol import CriterionDef, ProtocolDef

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./\-]*$")

# Limits of durable-rules 2.0.28's C engine (rules.h and measured here); we stay below them.
MAX_FACT_PROPERTIES = 255
MAX_RULES = 1000
MAX_CONDITION_TESTS = 2000
MAX_NESTING = 24
MAX_EXPRESSION_SLOTS = 30  # rete.h: MAX_SEQUENCE_EXPRESSIONS 32, error 113 when full
ROUTE_FANOUT = 8  # events.c walks the alpha network with a 64-entry stack (error 303)
ADVANCE_PRIORITY = 100
RESERVED_FIELDS = ("sid", "id", "t")


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

    def applies_to(self, cohort: str) -> bool:
        return not self.definition.cohorts or cohort in self.definition.cohorts


@dataclass
class CompiledProtocol:
    """Everything needed to decide subjects under one protocol version; built once, shared."""

    definition: ProtocolDef
    dictionary: DataDictionary
    criteria: list[CompiledCriterion]
    computed: list[ComputedField]
    stages: int
    ruleset: dict[str, Any] = field(repr=False)

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

    def criterion(self, code: str) -> CompiledCriterion:
        for criterion in self.criteria:
            if criterion.code == code:
                return criterion
        raise KeyError(code)

    def stage_of(self, name: str) -> int:
        """The stage at which a field first appears in the fact."""
        variable = self.dictionary.variables.get(name)
        if variable is not None and variable.derivation is not None:
            return variable.derivation.level
        extra = self.computed_field(name)
        return self.stage_of(extra.source) + 1 if extra else 0

    def computed_field(self, name: str) -> ComputedField | None:
        return next((c for c in self.computed if c.field == name), None)


def _stage(k: int) -> str:
    return f"stage{k}"


def compile_protocol(protocol: ProtocolDef) -> CompiledProtocol:
    """Validate every criterion and build the ruleset; raises with every problem found."""
    dictionary = DataDictionary(protocol)
    problems: list[str] = []
    rule_errors: list[RuleErrors] = []
    criteria: list[CompiledCriterion] = []
    for definition in protocol.criteria:
        if not CODE.match(definition.code):
            problems.append(f"criterion code `{definition.code}`: use letters, digits, `.`, `-` and `_`")
            continue
        try:
            checked = check_rule(definition.rule, dictionary, definition.code)
        except RuleErrors as errors:
            rule_errors.append(errors)
            continue
        criteria.append(CompiledCriterion(definition, checked))
    if rule_errors:
        if len(rule_errors) == 1 and not problems:
            raise rule_errors[0]
        problems += [str(e) for e in rule_errors]
    if problems:
        raise ProtocolError("the protocol does not compile", problems)

    computed = list({f.field: f for c in criteria for f in c.rule.computed}.values())
    compiled = CompiledProtocol(protocol, dictionary, criteria, computed, 0, {})
    compiled.stages = max(
        [compiled.stage_of(f.field) for f in computed] + [v.derivation.level for v in dictionary.derived] + [0]
    )
    compiled.ruleset = _ruleset(compiled)
    _check_limits(compiled)
    return compiled


def _ruleset(compiled: CompiledProtocol) -> dict[str, Any]:
    # Conditions per stage, each without its stage test; routed and assembled at the end.
    stages: list[dict[str, list[dict[str, Any]]]] = [{} for _ in range(compiled.stages + 1)]
    for variable in compiled.dictionary.derived:
        derivation = variable.derivation
        inputs = [a for a in derivation.arguments if isinstance(a, str)]  # type: ignore[union-attr]
        stages[derivation.level - 1][f"derive:{variable.name}"] = [{"$ex": {i: 1}} for i in inputs]  # type: ignore[union-attr]
    for extra in compiled.computed:
        stages[compiled.stage_of(extra.field) - 1][f"derive:{extra.field}"] = [{"$ex": {extra.source: 1}}]

    final = stages[compiled.stages]
    cohort_sets = sorted({c.definition.cohorts for c in compiled.criteria if c.definition.cohorts})
    for cohorts in cohort_sets:
        final[f"not_applicable:{'+'.join(cohorts)}"] = [{"$neq": {"cohort": c}} for c in cohorts]
    for criterion in compiled.criteria:
        guard: list[dict[str, Any]] = []
        if criterion.definition.cohorts:
            guard.append(conditions._any([{"cohort": c} for c in criterion.definition.cohorts]))
        holds = criterion.kind == "inclusion"
        outcomes = {
            "pass": conditions.definitely(criterion.ir, holds),
            "fail": conditions.definitely(criterion.ir, not holds),
            "unknown": conditions.unknown(criterion.ir),
        }
        for outcome, condition in outcomes.items():
            if conditions.size(condition) > MAX_CONDITION_TESTS:
                raise EngineLimitError(
                    f"criterion {criterion.code} expands to {conditions.size(condition)} engine tests"
                    f" (limit {MAX_CONDITION_TESTS}); an `at least k of (...)` over many items grows fast:"
                    " split it into several criteria."
                )
            try:
                pieces = conditions.split(conditions._all([*guard, condition]), MAX_EXPRESSION_SLOTS)
            except ValueError:
                raise EngineLimitError(
                    f"criterion {criterion.code} is too intricate for the engine in one piece (too many"
                    " and/or groups or comparisons with other values): split it into several criteria."
                ) from None
            if len(pieces) == 1:
                final[f"{criterion.code}:{outcome}"] = pieces
            else:
                for index, piece in enumerate(pieces, 1):
                    final[f"{criterion.code}:{outcome}:{index}"] = [piece]

    rules: dict[str, Any] = {}
    for k, stage_rules in enumerate(stages):
        test = {"t": _stage(k)}
        levels = _route_levels(len(stage_rules))
        for index, (name, parts) in enumerate(stage_rules.items()):
            rules[name] = _rule([test, *_route(index, levels), *parts])
        if k < compiled.stages:
            rules[f"advance:{k}"] = _rule([test], priority=ADVANCE_PRIORITY)
    return rules


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


def _check_limits(compiled: CompiledProtocol) -> None:
    fields = len(compiled.dictionary.variables) + len(compiled.computed) + len(RESERVED_FIELDS)
    if fields > MAX_FACT_PROPERTIES:
        raise EngineLimitError(
            f"the protocol has {fields} variables (with upper limits of normal and computed thresholds);"
            f" the engine holds at most {MAX_FACT_PROPERTIES} per subject. Remove unused variables."
        )
    if len(compiled.ruleset) > MAX_RULES:
        raise EngineLimitError(
            f"the protocol compiles to {len(compiled.ruleset)} engine rules, above the engine's limit of"
            f" {MAX_RULES}: split it or remove criteria."
        )
    for name, rule in compiled.ruleset.items():
        condition = rule["all"][0]["m"]
        code = name.split(":")[0]
        if conditions.nesting(condition) > MAX_NESTING:
            raise EngineLimitError(
                f"criterion {code} nests and/or/not {conditions.nesting(condition)} levels deep (limit {MAX_NESTING}):"
                " flatten it."
            )
    for criterion in compiled.criteria:
        if depth(criterion.ir) > MAX_NESTING:
            raise EngineLimitError(f"criterion {criterion.code} is nested too deeply to compile; flatten it.")
