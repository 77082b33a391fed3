"""Run compiled protocols in durable-rules, driving the C engine directly.

Why not `durable.engine.Host`: it starts background threads that poll every
ruleset (racing with our calls), swallows exceptions raised in actions, and
re-parses the whole fact and state in Python for every action fired (about
30 µs each). Driving `durable_rules_engine` ourselves keeps the engine's
matching and agenda, surfaces every error, and costs a few µs per action.

The C extension is not thread-safe and never releases the GIL, so calls are
serialised with one lock per process. Per-subject state is deleted after each
decision, whatever happens, or memory would grow with every subject.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import durable_rules_engine as native

from rules import jsonfast
from rules.compiler import CompiledProtocol
from rules.decision import Outcome
from rules.derivation import compute, threshold
from rules.errors import EngineError
from rules.planner import named_value, tally

OUTCOMES = (Outcome.PASS, Outcome.FAIL, Outcome.UNKNOWN)
_NOT_HANDLED = 1
_STOPS = ("advance:",)  # the rules the engine stops at, for the driver to assert the next stage's fact
_ACTING = ("derive:", "node:", *_STOPS)  # the rules whose work the driver does, when the engine stops


@dataclass
class Evaluation:
    """What deciding one subject produced: final values, each criterion's outcome, the rules that fired."""

    values: dict[str, Any]
    outcomes: dict[str, str]
    fired: list[str] = field(default_factory=list)

    def fired_by_criterion(
        self, owners: Mapping[str, str], heads: dict[str, str] | None = None
    ) -> dict[str, list[str]]:
        """Rule names per criterion code (or named condition), each once; a sub-condition's rules go
        to the criterion they serve (`owners`: sub-condition field -> owner). `heads` keeps each rule
        name's owner as found, for the next subject of the same version (its rules are a fixed set)."""
        heads = {} if heads is None else heads
        grouped: dict[str, list[str]] = {}
        for name in dict.fromkeys(self.fired):
            head = heads.get(name)
            if head is None:
                head, _, rest = name.partition(":")
                if head == "node":
                    head = owners.get(rest.rpartition(":")[0], head)
                heads[name] = head
            grouped.setdefault(head, []).append(name)
        return grouped


class DurableEngine:
    """One per process: holds each compiled ruleset once, keyed by the version's content hash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles: dict[str, int] = {}
        self._sids = itertools.count(1)

    def load(self, compiled: CompiledProtocol) -> int:
        """The engine handle of a compiled version, creating its ruleset on first use only."""
        name = compiled.ruleset_name
        with self._lock:
            handle = self._handles.get(name)
            if handle is None:
                try:
                    handle = native.create_ruleset(name, compiled.ruleset_json)
                except native.error as error:
                    raise EngineError(f"the engine refused protocol {compiled.definition.protocol}: {error}") from None
                self._handles[name] = handle
        return handle

    def unload(self, compiled: CompiledProtocol) -> bool:
        """Delete a version's ruleset from the engine, returning its memory; False if it was not loaded.

        The vendored engine frees a deleted ruleset whole (vendor/durable-rules/PATCHES.md), so a
        superseded draft costs nothing once unloaded.
        """
        with self._lock:
            handle = self._handles.pop(compiled.ruleset_name, None)
            if handle is not None:
                native.delete_ruleset(handle)
        return handle is not None

    @property
    def loaded(self) -> int:
        return len(self._handles)

    def evaluate(self, compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation:
        """Forward-chain one subject's canonical values through the version's ruleset."""
        current, fired = self.run(compiled, values)
        return Evaluation(current, outcomes_of(compiled, fired, current), fired)

    def evaluate_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Evaluation]:
        return [self.evaluate(compiled, values) for values in subjects]

    def run(self, compiled: CompiledProtocol, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The final values and the rules fired, in order: what crosses the pipe from an isolated engine."""
        handle = self._handles.get(compiled.ruleset_name) or self.load(compiled)
        current = dict(values)
        add_thresholds(compiled, 0, current)
        fired: list[str] = []
        with self._lock:
            sid = str(next(self._sids))
            state = None
            try:
                result = native.assert_fact(handle, self._fact(compiled, sid, 0, current))
                if result[0] != _NOT_HANDLED:
                    state = result[1]
                    # The engine fires every rule on its own up to the next stage's `advance:` (vendor/
                    # durable-rules patch 14). What `derive:` and `node:` rules ask for is only read by
                    # the next stage's fact, so it is done when the engine stops there, in firing order.
                    names, acting, acted = native.fire_actions(handle, state, False, _STOPS, _ACTING)
                    while True:
                        fired += names
                        for name in acted:  # the engine picked them out of names (patch 15)
                            self._act(handle, compiled, sid, name, current)
                        if not acting:
                            break
                        names, acting, acted = native.fire_actions(handle, state, True, _STOPS, _ACTING)
            except native.error as error:
                if state is not None:
                    native.abandon_action(handle, state)
                raise EngineError(f"the engine failed while deciding: {error}") from None
            except BaseException:
                if state is not None:
                    native.abandon_action(handle, state)
                raise
            finally:
                native.delete_state(handle, sid)
        return current, fired

    def _act(self, handle: int, compiled: CompiledProtocol, sid: str, name: str, current: dict[str, Any]) -> None:
        kind, _, target = name.partition(":")
        if kind == "node":
            record(compiled, target, current)
        elif kind == "derive":
            value = compute(compiled, target, current)
            if value is not None:
                current[target] = value
        elif kind == "advance":
            stage = int(target) + 1
            tally(current, compiled.tallies.get(stage, ()))
            add_thresholds(compiled, stage, current)
            native.assert_fact(handle, self._fact(compiled, sid, stage, current))

    @staticmethod
    def _fact(compiled: CompiledProtocol, sid: str, stage: int, values: Mapping[str, Any]) -> str:
        """The stage's fact: only the fields its rules read, so each value is parsed once, not per stage.

        The first stage reads most of a subject's values: they are copied whole and the few fields
        it does not read (the limits of normal behind computed thresholds, say) are dropped, by name.
        A later stage reads a few fields: those are picked. A field the version does not know, which
        only a caller outside `rules` could add, takes the slow way."""
        pick, drop, known = _fact_plan(compiled)[stage]
        if drop is not None and values.keys() <= known:
            fact = dict(values)
            for name in drop:
                fact.pop(name, None)
        else:
            fact = {name: values[name] for name in pick if name in values}
        fact["sid"], fact["id"], fact["t"] = sid, f"s{stage}", f"stage{stage}"
        return jsonfast.dumps(fact)


FactPlan = tuple[tuple[str, ...], tuple[str, ...] | None, frozenset[str]]


def _fact_plan(compiled: CompiledProtocol) -> tuple[FactPlan, ...]:
    """Per stage: the fields it reads (in a fixed order: the engine's matching does not depend on it),
    the fields to drop instead when they are fewer, and every field a subject's values can hold."""
    return compiled.once("engine.facts", lambda: _build_fact_plan(compiled))


def _build_fact_plan(compiled: CompiledProtocol) -> tuple[FactPlan, ...]:
    tallied = [f for tallies in compiled.tallies.values() for t in tallies for f in (t.true_field, t.possible_field)]
    known = frozenset(
        [
            *compiled.dictionary.variables,
            *(c.field for c in compiled.computed),
            *(s.field for s in compiled.subconditions),
            *tallied,
        ]
    )
    plans = []
    for wanted in compiled.stage_fields:
        drop = tuple(sorted(known - wanted))
        plans.append((tuple(sorted(wanted)), drop if len(drop) < len(wanted) else None, known))
    return tuple(plans)


def add_thresholds(compiled: CompiledProtocol, stage: int, current: dict[str, Any]) -> None:
    """The computed thresholds whose source the stage's fact carries (ULN multiples, window starts)."""
    for name, source, work in _threshold_work(compiled).get(stage, ()):
        if source in current:
            value = work(current)
            if value is not None:
                current[name] = value


Work = Callable[[Mapping[str, Any]], Any]


def _threshold_work(compiled: CompiledProtocol) -> dict[int, tuple[tuple[str, str, Work], ...]]:
    """Each stage's thresholds as (field, source, how to compute it from values holding the source).

    Added to every subject's fact, so the lookups `compute` does (which kind, which source, which
    amount) are done once per version; the arithmetic is the same (rules/derivation.py)."""
    return compiled.once(
        "engine.thresholds",
        lambda: {stage: tuple(_work(compiled, name) for name in names) for stage, names in compiled.thresholds.items()},
    )


def _work(compiled: CompiledProtocol, name: str) -> tuple[str, str, Work]:
    extra = compiled.computed_field(name)
    assert extra is not None  # thresholds are computed fields (CompiledProtocol.thresholds)
    source = extra.source
    if extra.kind in ("scale", "window"):
        of_source = threshold(compiled, name)
        return name, source, lambda values: of_source(values[source])
    return name, source, lambda values: compute(compiled, name, values)


def record(compiled: CompiledProtocol, target: str, current: dict[str, Any]) -> None:
    """What a sub-condition's rule decided (`<field>:<T|F|U>`), in the field the next stage reads."""
    field_name, _, value = target.rpartition(":")
    if field_name in compiled.named_fields:
        truth = named_value(value)
        if truth is not None:
            current[field_name] = truth
    else:
        current[field_name] = value


@dataclass(frozen=True)
class _Outcomes:
    """What reading outcomes from fired rules needs, worked out once per version."""

    decides: dict[str, tuple[str, str]]  # `<code>:<outcome>` rule -> (code, outcome)
    deciding: frozenset[str]  # its keys, to intersect with the rules fired
    inapplicable: frozenset[str]  # the `not_applicable:<cohorts>` rules
    # per set of `not_applicable:` rules fired: every code in the protocol's order (None: to be decided
    # by a rule, else "not_applicable"), and the codes that must then have no outcome
    templates: dict[frozenset[str], tuple[dict[str, str | None], frozenset[str]]]


def _outcome_table(compiled: CompiledProtocol) -> _Outcomes:
    return compiled.once("engine.outcomes", lambda: _build_outcome_table(compiled))


def _build_outcome_table(compiled: CompiledProtocol) -> _Outcomes:
    decides = {f"{c.code}:{o}": (c.code, o.value) for c in compiled.criteria for o in OUTCOMES}
    keys = {cohorts for _, cohorts in compiled.applicability if cohorts is not None}
    inapplicable = frozenset(f"not_applicable:{key}" for key in keys)
    return _Outcomes(decides, frozenset(decides), inapplicable, {})


def _template(compiled: CompiledProtocol, marked: frozenset[str]) -> tuple[dict[str, str | None], frozenset[str]]:
    keys = {name.partition(":")[2] for name in marked}
    template = {code: "not_applicable" if cohorts in keys else None for code, cohorts in compiled.applicability}
    return template, frozenset(code for code, outcome in template.items() if outcome)


def outcomes_of(compiled: CompiledProtocol, fired: list[str], values: Mapping[str, Any]) -> dict[str, str]:
    """Each criterion's outcome from the rules that fired, checking the engine gave exactly one.

    Read for every subject, so done with set and dict operations over the rules' names (a rule may
    fire more than once: one outcome still); the loops below run only to name what went wrong."""
    table = _outcome_table(compiled)
    unique = set(fired)
    decides = table.decides
    decided = unique & table.deciding
    found = dict([decides[name] for name in decided])
    if len(found) != len(decided):
        first: dict[str, str] = {}
        for code, outcome in [decides[name] for name in fired if name in decided]:
            if first.setdefault(code, outcome) != outcome:
                raise EngineError(f"the engine gave criterion {code} two outcomes ({first[code]}, {outcome})")
    marked = frozenset(unique & table.inapplicable)
    known = table.templates.get(marked)
    if known is None:
        known = _template(compiled, marked)
        if len(table.templates) < 64:  # a version has a few cohorts, so a few sets; bounded whatever comes
            table.templates[marked] = known
    template, excluded = known
    if not excluded.isdisjoint(found):
        code = next(code for code in template if code in excluded and code in found)
        raise EngineError(f"criterion {code} was decided for cohort {values.get('cohort')}, which it does not apply to")
    outcomes = template.copy()  # in the protocol's order
    outcomes.update(found)
    if None in outcomes.values():
        code = next(code for code, outcome in outcomes.items() if outcome is None)
        raise EngineError(f"the engine gave no outcome for criterion {code}")
    return outcomes  # type: ignore[return-value]


_default: DurableEngine | None = None
_default_lock = threading.Lock()


def default_engine() -> DurableEngine:
    global _default
    with _default_lock:
        if _default is None:
            _default = DurableEngine()
        return _default
