"""Turn outcomes into explanations a screener understands and a reviewer can trace.

The engine has decided each criterion's outcome; this module walks the
criterion's IR over the same values to say *why*: the value used (and what was
submitted, if in another unit), the threshold, and which branch of an any-of,
an exception or an at-least-k decided. As a safety net it checks its own
reading against the engine's outcome and refuses to explain a disagreement.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

from rules import lists
from rules.checker import ComputedField
from rules.compiler import CompiledCriterion, CompiledProtocol
from rules.decision import CriterionResult, Decision, combine
from rules.dictionary import Subject, Variable
from rules.engine import Evaluation
from rules.errors import EngineError
from rules.ir import _COMPARE, Group, Node, Test, Truth3, evaluate
from rules.ir import combine as combine_truth
from rules.reference import outcome_of

_RELATION = {
    ">=": ("is at least", "is below"),
    ">": ("is above", "is not above"),
    "<=": ("is at most", "is above"),
    "<": ("is below", "is not below"),
    "==": ("equals", "does not equal"),
    "!=": ("does not equal", "equals"),
}


def number(value: float) -> str:
    if value == 0:  # 0.0 and -0.0 are equal keys but are written "0" and "-0": not cached
        return _number(value)
    return _cached_number(value)


def _number(value: float) -> str:
    rounded = round(float(value), 3)
    return f"{rounded:g}" if abs(rounded) < 1e6 else f"{rounded:,.0f}"


# Written ~40 times a subject, mostly the same thresholds and common values; round() to 3 places
# costs more than the rest of writing a test's sentence. Equal keys (1, 1.0) are written alike.
_cached_number = functools.lru_cache(maxsize=16384)(_number)


@dataclass(frozen=True, slots=True)
class _TestPlan:
    """What explaining one test needs that does not depend on the subject: worked out once per test.

    Explaining reads each criterion's tests for every subject decided; their labels, units, relation
    words and constant thresholds are the same every time, so only the comparison and the values'
    text are left to do per subject."""

    field: str
    other: str | None
    value: Any
    compare: Callable[[Any, Any], Any]
    kind: str  # how the sentence reads the test: number, boolean or code
    label: str
    unit: str | None
    relations: tuple[str, str]  # when it holds, when it does not
    threshold: str | None  # a constant threshold's text; None when the operand is another field
    shows: str  # how the field's value is written (Explainer.show): date, boolean, code or number
    answers: tuple[str, str]  # a yes/no test's sentence when the answer is no, and when it is yes


def _plan(explainer: Explainer, test: Test) -> _TestPlan:
    variable = explainer.dictionary.variables.get(test.field)
    kind = variable.type if variable is not None else "number"
    return _TestPlan(
        field=test.field,
        other=test.other,
        value=test.value,
        compare=_COMPARE[test.op],
        kind=kind,
        label=explainer.label(test.field),
        unit=explainer.unit(test.field),
        relations=_RELATION[test.op],
        threshold=explainer.threshold(test) if test.other is None and kind not in ("boolean", "code") else None,
        shows=variable.type if variable is not None else "date",
        answers=(f"{explainer.label(test.field)}: no", f"{explainer.label(test.field)}: yes"),
    )


# Explanations kept per criterion: a criterion's explanation is a function of the values it reads, and
# most criteria read yes/no answers that a few combinations cover. Past MEMO_LIMIT a memo starts over;
# one that found fewer than one in four of REVIEW lookups stops keeping (see _Kept).
MEMO_LIMIT = 128
REVIEW = 256
_ABSENT = object()  # a field with no value: unlike None, never a submitted value


class _Kept:
    """Explanations kept by what they depend on: bounded, and given up where they are rarely found again.

    A condition on a measured value (a lab result, CrCl) is new for nearly every subject. Keeping its
    explanations would find nothing and churn memory: each kept tree lives long enough to be walked
    by the garbage collector's full collections, which then come more often (measured: a fifth of a
    decision's time). So after REVIEW lookups that found fewer than one in four, it stops keeping."""

    __slots__ = ("found", "kept", "looked", "on")

    def __init__(self) -> None:
        self.kept: dict[tuple[Any, ...], Any] = {}
        self.looked = self.found = 0
        self.on = True

    def find(self, key: tuple[Any, ...]) -> Any:
        """The explanation kept for `key`, or None. An unhashable key raises TypeError."""
        known = self.kept.get(key)
        self.looked += 1
        if known is not None:
            self.found += 1
        elif self.looked >= REVIEW:
            if self.found * 4 < self.looked:
                self.on = False
                self.kept.clear()
            self.looked = self.found = 0
        return known

    def keep(self, key: tuple[Any, ...], explained: Any) -> None:
        if not self.on:
            return
        kept = self.kept
        if len(kept) >= MEMO_LIMIT:
            kept.clear()
        kept[key] = explained


class _Memo(_Kept):
    """Explanations of one condition (a criterion's, or a part of one) kept by what they depend on.

    `reads` is every field the explanation looks at: the tests' fields and thresholds' bases, the
    sources of computed thresholds and the inputs of derived values (their presence decides what
    is reported missing). Two subjects that agree on those and on the units they submitted them in
    get the same explanation, so it is built once and shared: explanation trees are read-only once
    made. Conditions on histories (lists of entries) are not memoised (`reads` None)."""

    __slots__ = ("measured", "read", "reads")

    def __init__(self, compiled: CompiledProtocol, node: Node) -> None:
        super().__init__()
        self.reads = _reads(compiled, node)
        variables = compiled.dictionary.variables
        # the numbers among `reads`: submitted in a unit the explanation may show
        self.measured = tuple(n for n in self.reads or () if n in variables and variables[n].type == "number")
        self.read: Callable[[Mapping[str, Any]], Any] = operator.itemgetter(*self.reads) if self.reads else _nothing

    def key(self, values: Mapping[str, Any], submitted: Mapping[str, Any], *more: Any) -> tuple[Any, ...]:
        """What the explanation depends on. itemgetter is the fast way; a field without a value (a
        KeyError) takes the slower one, which marks it absent."""
        reads = self.reads or ()
        try:
            known = self.read(values)
        except KeyError:
            known = tuple(map(values.get, reads, repeat(_ABSENT)))
            if len(reads) == 1:
                known = known[0]
        if not self.measured:
            return (*more, known)
        return (*more, known, *map(submitted.get, self.measured))


class _CriterionPlan(_Memo):
    """What explaining one criterion needs that is the same for every subject, and what it explained so far.

    Its condition's top-level parts keep theirs too: a criterion on a measured value (explained
    afresh for nearly every subject) often has an exception or a second part on yes/no answers."""

    __slots__ = ("code", "cohorts", "criterion", "not_applicable", "parts")

    def __init__(self, compiled: CompiledProtocol, criterion: CompiledCriterion) -> None:
        super().__init__(compiled, criterion.ir)
        definition = criterion.definition
        self.criterion = criterion
        self.code = definition.code
        self.cohorts = list(definition.cohorts)
        self.not_applicable = f"not applicable: {', '.join(definition.cohorts)} cohort only"
        ir = criterion.ir
        self.parts: tuple[_Memo, ...] | None = (
            tuple(_Memo(compiled, item) for item in ir.items)
            if isinstance(ir, Group) and not ir.style.startswith("list:")
            else None
        )

    def result(
        self, outcome: str, sentence: str, fired: list[str], missing: list[str], condition: dict[str, Any] | None
    ) -> CriterionResult:
        d = self.criterion.definition
        return CriterionResult(
            d.code, d.kind, d.section, d.text, self.cohorts, outcome, sentence, missing, fired, condition, d.notes
        )


def _nothing(values: Mapping[str, Any]) -> tuple[()]:
    return ()


def _reads(compiled: CompiledProtocol, node: Node) -> tuple[str, ...] | None:
    """Every field explaining `node` reads, followed through computed thresholds and derivations."""
    names: set[str] = set()
    pending: list[Node] = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, Group):
            if item.style.startswith("list:"):
                return None
            pending.extend(item.items)
        else:
            names.update(name for name in (item.field, item.other, item.basis) if name)
    dictionary = compiled.dictionary
    todo = list(names)
    while todo:
        name = todo.pop()
        more: set[str] = set()
        extra = compiled.computed_field(name)
        if extra is not None:  # a window's first day or a scaled limit: its own value is read too
            more.add(extra.source)
        variable = dictionary.variables.get(name)
        if variable is not None:
            if variable.type == "list":
                return None
            if variable.derivation is not None:
                more |= set(variable.derivation.inputs)
            more |= dictionary.inputs_of(name) | dictionary.condition_inputs(name)
        for found in more - names:
            names.add(found)
            todo.append(found)
    return tuple(sorted(names))


def _shown(kind: str, unit: str | None, value: Any) -> str:
    """A value as Explainer.show writes it, for a field shown as `kind` in `unit`."""
    if kind == "date":
        return dt.date.fromordinal(int(value)).isoformat()
    if kind == "boolean":
        return "yes" if value else "no"
    if kind == "code":
        return str(value)
    return f"{number(value)} {unit}" if unit else number(value)


class Explainer:
    def __init__(self, compiled: CompiledProtocol, subject: Subject, values: Mapping[str, Any]) -> None:
        self.compiled = compiled
        self.dictionary = compiled.dictionary
        self.subject = subject
        self.values = values
        self.plans: dict[int, _TestPlan] = compiled.once("explain.plans", dict)
        self.inputs: dict[str, frozenset[str]] = compiled.once("explain.inputs", dict)
        self.criterion_plans: list[_CriterionPlan] = compiled.once(
            "explain.criteria", lambda: [_CriterionPlan(compiled, c) for c in compiled.criteria]
        )

    # -- values and labels ------------------------------------------------------------------

    def label(self, name: str) -> str:
        variable = self.dictionary.variables.get(name)
        if variable is not None:
            return variable.label
        return "start of window" if name.startswith("_") else name

    def unit(self, name: str) -> str | None:
        variable = self.dictionary.variables.get(name)
        return variable.unit if variable is not None else None

    def show(self, name: str, value: Any | None = None) -> str:
        value = self.values[name] if value is None else value
        variable = self.dictionary.variables.get(name)
        if variable is None:
            return _shown("date", None, value)
        return _shown(variable.type, variable.unit, value)

    def submitted(self, name: str, canonical: str | None = None) -> str:
        raw, unit = self.subject.submitted.get(name, (None, None))
        if unit is None or unit == (canonical if canonical is not None else self.unit(name)):
            return ""
        return f" (submitted {number(raw)} {unit})"

    def missing(self, fields: tuple[str, ...] | set[str]) -> list[str]:
        """The submitted variables whose absence leaves these fields unknown."""
        found: set[str] = set()
        for name in fields:
            if name in self.values:
                continue
            if name in self.dictionary.variables:
                lacking = {i for i in self.inputs_of(name) if i not in self.values}
                found |= lacking or {name}  # all its inputs known: the formula itself has no value
            else:
                extra = self.compiled.computed_field(name)
                found |= set(self.missing({extra.source})) if extra else {name}
        return sorted(found)

    def inputs_of(self, name: str) -> frozenset[str]:
        """The dictionary's inputs_of, worked out once per version: read for every unknown test."""
        found = self.inputs.get(name)
        if found is None:
            found = self.inputs[name] = frozenset(self.dictionary.inputs_of(name))
        return found

    def missing_sentence(self, fields: tuple[str, ...]) -> str:
        parts = []
        for name in fields:
            extra = self.compiled.computed_field(name)
            if extra is not None:
                name = extra.source
            if name in self.values:
                continue
            variable = self.dictionary.variables.get(name)
            if variable is not None and variable.is_derived:
                lacking = [i for i in self.missing({name}) if i != name]
                if lacking:
                    parts.append(f"{variable.label} not computed: {', '.join(self.label(i) for i in lacking)} missing")
                else:
                    parts.append(f"{variable.label} has no value for these inputs (e.g. a division by zero)")
            elif variable is not None:
                parts.append(f"{variable.label} missing")
        return "; ".join(dict.fromkeys(parts)) or "missing data"

    # -- nodes -------------------------------------------------------------------------------

    def report(self, node: Node, parts: tuple[_Memo, ...] | None = None) -> dict[str, Any]:
        """A node's report; `parts`, for a criterion's top-level group, memoises each of its items."""
        if type(node) is Test:  # not isinstance: this runs for every node of every subject
            return self.test(node)
        if TYPE_CHECKING:
            assert isinstance(node, Group)
        if node.style.startswith("list:"):
            return self.list_report(node)
        if parts is not None:
            items = [self.part(memo, item) for memo, item in zip(parts, node.items, strict=True)]
        else:
            items = [self.test(item) if type(item) is Test else self.report(item) for item in node.items]
        value = combine_truth(node, [i["value"] for i in items])
        for item in items:
            item["decisive"] = _decisive(node, value, item["value"])
        report: dict[str, Any] = {"type": node.style or node.op, "value": value, "items": items}
        if node.op == "at_least":
            report["needed"] = node.count
            report["met"] = sum(1 for i in items if i["value"] is True)
        report["sentence"] = self.group_sentence(node, value, items)
        if value is None:
            report["missing"] = sorted({m for i in items if i["value"] is None for m in i.get("missing", [])})
        return report

    def test(self, test: Test) -> dict[str, Any]:
        plan = self.plans.get(id(test))
        if plan is None:  # the compiled IR holds every test for as long as the plans are kept
            plan = self.plans[id(test)] = _plan(self, test)
        values = self.values
        field_name, other = plan.field, plan.other
        if field_name not in values or (other is not None and other not in values):
            return {
                "type": "test",
                "value": None,
                "variable": field_name,
                "operator": test.op,
                "missing": self.missing(test.fields),
                "sentence": self.missing_sentence(test.fields),
            }
        actual = values[field_name]
        operand = plan.value if other is None else values[other]
        value = bool(plan.compare(actual, operand))
        report: dict[str, Any] = {
            "type": "test",
            "value": value,
            "variable": field_name,
            "operator": test.op,
            "actual": actual,
            "threshold": operand,
        }
        kind = plan.kind
        if kind == "boolean":
            report["sentence"] = plan.answers[1 if actual else 0]
        elif kind == "code":
            target = str(plan.value)
            report["sentence"] = f"{plan.label} is {actual}" + ("" if actual == target else f", not {target}")
        else:
            relation = plan.relations[0 if value else 1]
            shown = f"{plan.label} {_shown(plan.shows, plan.unit, actual)}{self.submitted(field_name, plan.unit)}"
            threshold = plan.threshold if plan.threshold is not None else self.threshold(test)
            report["sentence"] = f"{shown} {relation} {threshold}"
        if other:
            report["other"] = other
        return report

    def list_report(self, node: Group) -> dict[str, Any]:
        """Which entries of a history matched the value set in the window, or that none did."""
        value = evaluate(node, self.values)
        first = _first_test(node)
        extra: ComputedField = self.compiled.computed_field(first.field)  # type: ignore[assignment]
        quantifier = node.style.partition(":")[2]
        value_set = self.dictionary.value_sets[extra.value_set]
        report: dict[str, Any] = {
            "type": "list",
            "value": value,
            "variable": extra.source,
            "value_set": extra.value_set,
        }
        where = f"{value_set.definition.label}{first.shown.removeprefix(extra.value_set)}"
        list_label = self.label(extra.source)
        entries = self.values.get(extra.source)
        reference = self.values.get(extra.window.reference)
        if entries is None or (extra.unit and reference is None):
            report["missing"] = [extra.source] if entries is None else [extra.window.reference]
            report["sentence"] = self.missing_sentence(tuple(report["missing"]))
            return report
        certain, open_ = lists.matches(entries, value_set, extra.window, reference)
        report["matched"] = [lists.describe_entry(e) for e in certain]
        if open_:
            report["undecided"] = [lists.describe_entry(e) for e in open_]
        if certain:
            sentence = f"{list_label} in {where}: " + "; ".join(report["matched"])
        else:
            sentence = f"no {list_label.lower()} in {where}"
        if quantifier == "count":
            sentence = f"{len(certain)} {list_label.lower()} in {where}" + (
                ": " + "; ".join(report["matched"]) if certain else ""
            )
        if value is None and open_:
            undecided = {id(e) for e in open_}
            positions = [f"{extra.source}[{i}].start" for i, e in enumerate(entries) if id(e) in undecided]
            report["missing"] = positions
            sentence += "; dates missing for " + "; ".join(report["undecided"])
        report["sentence"] = sentence
        return report

    def threshold(self, test: Test) -> str:
        if test.other is None:
            canonical = f"{number(float(test.value))} {self.unit(test.field) or ''}".strip()  # type: ignore[arg-type]
            return (
                test.shown
                if test.shown.replace(" ", "") == canonical.replace(" ", "")
                else f"{test.shown} ({canonical})"
            )
        limit = self.show(test.field, test.operand(self.values))
        for limit_name in ("ULN", "LLN"):
            if test.basis == f"{test.field}_{limit_name.lower()}":
                return f"{test.shown} ({limit}; {limit_name} {self.show(test.basis)})"
        return f"{self.label(test.basis or test.other)} {limit}"

    def group_sentence(self, node: Group, value: Truth3, items: list[dict[str, Any]]) -> str:
        style = node.style
        if value is None and style not in ("at_least",):
            unknown = [i["sentence"] for i in items if i["value"] is None]
            return "; ".join(dict.fromkeys(unknown))
        if style == "and" or style == "or":  # most groups: the decisive items say it
            return "; ".join(dict.fromkeys([i["sentence"] for i in items if i["decisive"]]))
        if style in ("within", "window"):
            test: Test = node.items[0]  # type: ignore[assignment]
            where = "is" if value else "is not"
            return (
                f"{self.label(test.field)} {self.show(test.field)} {where} {test.shown}"
                f" ({self.show(test.basis)})"  # type: ignore[arg-type]
            )
        if style == "between":
            low, high = node.items
            where = "is between" if value else "is outside"
            actual = f"{self.label(low.field)} {self.show(low.field)}{self.submitted(low.field)}"  # type: ignore[union-attr]
            return f"{actual} {where} {low.shown} and {high.shown}"  # type: ignore[union-attr]
        if style == "in":
            first: Test = node.items[0]  # type: ignore[assignment]
            codes = ", ".join(str(t.value) for t in node.items)  # type: ignore[union-attr]
            actual = self.values[first.field]
            return f"{self.label(first.field)} is {actual}" + ("" if value else f", not one of {codes}")
        if style == "unless":
            requirement, exception = items
            if requirement["value"] is True:
                return requirement["sentence"]
            if exception["value"] is True:
                return f"{requirement['sentence']}, but the exception applies: {exception['sentence']}"
            return f"{requirement['sentence']}, and the exception does not apply: {exception['sentence']}"
        if style == "implies":
            condition = items[0]["items"][0]
            if condition["value"] is False:
                return f"does not apply: {condition['sentence']}"
            return f"{condition['sentence']}, so: {items[1]['sentence']}"
        if style == "at_least":
            met = sum(1 for i in items if i["value"] is True)
            unknowns = sum(1 for i in items if i["value"] is None)
            head = f"{met} of {len(items)} met (at least {node.count} needed"
            head += f", {unknowns} unknown)" if unknowns else ")"
            shown = [i["sentence"] for i in items if i["value"] is True] if value else [i["sentence"] for i in items]
            return f"{head}: " + "; ".join(shown) if shown else head
        if style == "not":
            return items[0]["sentence"]
        chosen = [i["sentence"] for i in items if i["decisive"]]
        return "; ".join(dict.fromkeys(chosen))

    # -- criteria ----------------------------------------------------------------------------

    def criteria(self, outcomes: Mapping[str, str], fired: Mapping[str, list[str]]) -> list[CriterionResult]:
        """Every criterion's result, in the protocol's order."""
        return [self.criterion(plan, outcomes[plan.code], fired.get(plan.code, [])) for plan in self.criterion_plans]

    def criterion(self, plan: _CriterionPlan, outcome: str, fired: list[str]) -> CriterionResult:
        """One criterion's result, its explanation taken from the memo when another subject had the same
        values (this runs for every criterion of every subject decided)."""
        if outcome == "not_applicable":
            return plan.result(outcome, plan.not_applicable, fired, [], None)
        known, key = self.recall(plan, outcome)
        if known is not None:
            condition, sentence, missing = known
            return plan.result(outcome, sentence, fired, list(missing), condition)
        result = self.explain_afresh(plan, outcome, fired)
        if key is not None:
            plan.keep(key, (result.condition, result.sentence, tuple(result.missing)))
        return result

    def part(self, memo: _Memo, node: Node) -> dict[str, Any]:
        """A top-level part's report, from the memo when it can be. The caller marks the report it
        gets as decisive or not, so it gets a copy of what is kept (the parts below are shared)."""
        known, key = self.recall(memo)
        if known is not None:
            return dict(known)
        report = self.report(node)
        if key is not None:
            memo.keep(key, dict(report))
        return report

    def recall(self, memo: _Memo, *more: Any) -> tuple[Any, tuple[Any, ...] | None]:
        """What `memo` kept for this subject (None if nothing), and the key to keep it under (None
        where this subject's explanation cannot be kept: a history, a memo given up, a value that
        cannot be a key)."""
        if memo.reads is None or not memo.on:
            return None, None
        key = memo.key(self.values, self.subject.submitted, *more)
        try:
            return memo.find(key), key
        except TypeError:
            return None, None

    def explain_afresh(self, plan: _CriterionPlan, outcome: str, fired: list[str]) -> CriterionResult:
        """An applicable criterion's result, its condition walked over this subject's values."""
        criterion = plan.criterion
        result = plan.result(outcome, "", fired, [], None)
        report = self.report(criterion.ir, plan.parts)
        reading = outcome_of(criterion.kind, report["value"])
        if reading != outcome:
            raise EngineError(
                f"criterion {criterion.code}: the engine decided {outcome} but its rule reads {reading};"
                " refusing to explain a decision that cannot be traced"
            )
        result.condition = report
        if outcome == "unknown":
            result.missing = report.get("missing", [])
            labels = ", ".join(self.label(m) for m in result.missing)
            result.sentence = f"not checked: {labels} missing"
        else:
            result.sentence = report["sentence"]
        return result

    def derived(self) -> dict[str, dict[str, Any]]:
        """Each derived value with its formula, the inputs it was computed from (value and unit) and its result.

        A value whose inputs are all known but whose formula has none (a division by zero) is shown too,
        with `value` None, so a reviewer sees why it is missing."""
        out: dict[str, dict[str, Any]] = {}
        values = self.values
        memos: dict[str, _Kept] = self.compiled.once("explain.derived", dict)
        for variable in self.dictionary.derived:
            inputs = variable.derivation.inputs  # type: ignore[union-attr]
            computed = variable.name in values
            if not computed and any(i not in values for i in inputs):
                continue
            memo = memos.get(variable.name)
            if memo is None:
                memo = memos[variable.name] = _Kept()
            if not memo.on:
                out[variable.name] = self.derivation(variable, computed)
                continue
            # Like a criterion's explanation, a derived value's is the same for the same inputs as submitted.
            key = (
                values.get(variable.name),
                tuple(map(values.get, inputs)),
                tuple(map(self.subject.submitted.get, inputs)),
            )
            entry = memo.find(key)
            if entry is None:
                entry = self.derivation(variable, computed)
                memo.keep(key, entry)
            out[variable.name] = entry
        return out

    def derivation(self, variable: Variable, computed: bool) -> dict[str, Any]:
        entries = {i: self.input(i) for i in variable.derivation.inputs}  # type: ignore[union-attr]
        shown = ", ".join(f"{self.label(i)} {entry['shown']}" for i, entry in entries.items())
        result = self.show(variable.name) if computed else "no value"
        return {
            "label": variable.label,
            "value": self.values[variable.name] if computed else None,
            "unit": variable.unit,
            "formula": variable.definition.formula,
            "inputs": entries,
            "sentence": f"{variable.label} = {variable.definition.formula} = {result}, from {shown}",
        }

    def input(self, name: str) -> dict[str, Any]:
        """One input of a formula as it went in: canonical value and unit, and what was submitted."""
        variable = self.dictionary.variables[name]
        value, canonical = self.values[name], variable.unit
        if variable.type == "date":
            value = dt.date.fromordinal(int(value)).isoformat()
        shown = value if variable.type == "date" else self.show(name)
        entry: dict[str, Any] = {"value": value, "unit": canonical, "shown": shown}
        raw, unit = self.subject.submitted.get(name, (None, None))
        if unit is not None and unit != canonical:
            entry["submitted"] = {"value": raw, "unit": unit}
        return entry


def _first_test(node: Node) -> Test:
    while isinstance(node, Group):
        node = node.items[0]
    return node


def _decisive(node: Group, value: Truth3, item: Truth3) -> bool:
    if node.op in ("not",):
        return True
    if value is None:
        return item is None
    if node.op == "all":
        return True if value else item is False
    if node.op == "any":
        return item is True if value else True
    return item is value


def fired_by_criterion(compiled: CompiledProtocol, evaluation: Evaluation) -> dict[str, list[str]]:
    """The rules fired, per criterion; each rule name's owner is worked out once per version."""
    return evaluation.fired_by_criterion(compiled.node_owners, compiled.once("explain.heads", dict))


def explain(compiled: CompiledProtocol, subject: Subject, evaluation: Evaluation) -> Decision:
    explainer = Explainer(compiled, subject, evaluation.values)
    results = explainer.criteria(evaluation.outcomes, fired_by_criterion(compiled, evaluation))
    missing = sorted({m for r in results if r.outcome == "unknown" for m in r.missing})
    definition = compiled.definition
    return Decision(
        decision=combine([r.outcome for r in results]),
        protocol=definition.protocol,
        version=definition.version,
        content_hash=compiled.content_hash,
        cohort=subject.cohort,
        screening_date=subject.screening_date.isoformat(),
        criteria=results,
        missing=missing,
        derived=explainer.derived(),
        rules_fired=list(evaluation.fired),
    )
