"""The data dictionary of a protocol version, and the normalisation of subject data.

Every value is converted to its variable's canonical unit and checked against
its plausible range here, before anything reaches the engine: the engine only
ever sees clean canonical numbers, ISO dates as day numbers, booleans and codes.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rules import lists, units
from rules.ast import Term
from rules.errors import ProtocolError, RuleError, RuleErrors, SubjectInputError, SubjectInputErrors
from rules.expression import Closure, Expr, closure, run_closure
from rules.formula_check import check_parsed, referenced
from rules.formulas import date_ordinal
from rules.parser import parse_formula
from rules.protocol import ProtocolDef, VariableDef

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = frozenset(
    {
        "sid",
        "id",
        "t",
        "and",
        "or",
        "not",
        "unless",
        "if",
        "then",
        "else",
        "in",
        "is",
        "within",
        "before",
        "between",
        "at",
        "least",
        "of",
        "any",
        "all",
        "screening",
        "after",
        "more",
        "less",
        "than",
        "x",
        "no",
        "count",
        "last",
    }
)
_TRUE = frozenset({"true", "yes", "y", "1", "positive", "pos", "+"})
_FALSE = frozenset({"false", "no", "n", "0", "negative", "neg", "-"})
_NUMBER_WITH_UNIT = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Derivation:
    """How a derived variable is computed: its formula, checked and lowered to an expression tree."""

    formula: str
    expression: Expr
    inputs: tuple[str, ...]  # every variable the formula may read: its `derive:` rule waits for all of them
    result_factor: float  # the formula's unit -> the variable's canonical unit
    level: int  # 1 + the deepest derived variable among its inputs
    run: Closure = field(init=False, compare=False, repr=False)  # the expression as closures, built once

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", closure(self.expression))

    @property
    def arguments(self) -> tuple[str, ...]:
        """The inputs, under the name the compiler's `derive:` rules read them by."""
        return self.inputs


@dataclass(frozen=True)
class Variable:
    definition: VariableDef
    derivation: Derivation | None = None
    companion_of: str | None = None  # set on `<name>_uln`/`<name>_lln`, the subject's own limits of normal
    builtin: bool = False

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def type(self) -> str:
        return self.definition.type

    @property
    def unit(self) -> str | None:
        return self.definition.unit

    @property
    def label(self) -> str:
        return self.definition.label

    @property
    def accepted_units(self) -> tuple[str, ...]:
        unit = self.definition.unit
        return tuple(dict.fromkeys(([unit] if unit else []) + list(self.definition.units)))

    @property
    def is_derived(self) -> bool:
        """Computed by the protocol (a formula or a named condition), so never submitted."""
        return self.derivation is not None or self.definition.condition is not None


@dataclass
class Subject:
    """A subject's data after normalisation: canonical values, and what was submitted, for explanations."""

    values: dict[str, Any]
    submitted: dict[str, tuple[Any, str | None]] = field(default_factory=dict)

    @property
    def cohort(self) -> str:
        """The cohort screened for; empty for a trial without cohorts."""
        return self.values.get("cohort", "")

    @property
    def screening_date(self) -> dt.date:
        return dt.date.fromordinal(self.values["screening_date"])


def _builtins(protocol: ProtocolDef) -> list[VariableDef]:
    """The variables every screening has: the screening date, and the cohort where the trial has cohorts
    (a single-population trial needs no dummy cohort)."""
    cohort = VariableDef(
        name="cohort",
        label="Cohort",
        type="code",
        codes=tuple(c.code for c in protocol.cohorts),
        section="Screening",
        help="The disease cohort the subject is screened for.",
    )
    return [
        *([cohort] if protocol.cohorts else []),
        VariableDef(
            name="screening_date",
            label="Screening date",
            type="date",
            section="Screening",
            help="The date of screening; windows such as 'within 14 days before screening' count back from it.",
        ),
    ]


LIMITS = {"uln": "upper", "lln": "lower"}  # the limits of normal a lab reports beside a value


def _companion(variable: VariableDef, limit: str) -> VariableDef:
    """`<name>_uln` or `<name>_lln`: the limit of normal of the lab that measured the value."""
    return replace(
        variable,
        name=f"{variable.name}_{limit}",
        label=f"{variable.label} {LIMITS[limit]} limit of normal",
        minimum=0,
        uln=False,
        lln=False,
        formula=None,
        help=f"The {LIMITS[limit]} limit of normal of the lab that measured {variable.label}.",
    )


class DataDictionary:
    """The variables of one protocol version: declared, companion (_uln) and built-in."""

    def __init__(self, protocol: ProtocolDef, *, strict: bool = True) -> None:
        """`strict=False` keeps the problems in `self.problems` instead of raising, so the compiler can
        report them together with the rules' problems in one answer."""
        problems: list[str] = []
        self.problems = problems
        self.variables: dict[str, Variable] = {}
        self._condition_inputs: dict[str, set[str]] = {}
        self._looks_back: frozenset[str] = frozenset()
        # accepted unit -> canonical, per variable: computed once here, so no value meets pint
        self.conversions: dict[str, dict[str, units.Conversion]] = {}
        for definition in _builtins(protocol):
            self.variables[definition.name] = Variable(definition, builtin=True)
        for definition in protocol.variables:
            self._check_definition(definition, problems)
            if definition.name in self.variables:
                problems.append(f"variable `{definition.name}` is built in; choose another name")
                continue
            self.variables[definition.name] = Variable(definition)
            for limit, word in LIMITS.items():
                if not getattr(definition, limit):
                    continue
                companion = _companion(definition, limit)
                if companion.name in self.variables or any(v.name == companion.name for v in protocol.variables):
                    problems.append(f"`{companion.name}` is reserved for {definition.name}'s {word} limit of normal")
                self.variables[companion.name] = Variable(companion, companion_of=definition.name)
                self.conversions[companion.name] = self.conversions.get(definition.name, {})
        self.value_sets = lists.check_value_sets(protocol.value_sets, problems)
        if not problems:
            self._resolve_derivations(problems)
        if problems and strict:
            raise ProtocolError("the data dictionary is not valid", problems)

    # -- checking the dictionary -------------------------------------------------------------

    def _check_definition(self, v: VariableDef, problems: list[str]) -> None:
        where = f"variable `{v.name}`"
        if not NAME.match(v.name) or v.name in RESERVED:
            problems.append(f"{where}: names are lower case letters, digits and _, and not a keyword")
        if v.type == "number":
            self._check_units(v, where, problems)
            if v.units and not v.unit:
                problems.append(f"{where}: accepted units need a canonical `unit`")
            if v.minimum is not None and v.maximum is not None and v.minimum > v.maximum:
                problems.append(f"{where}: minimum {v.minimum} is above maximum {v.maximum}")
        elif v.unit or v.units or v.uln or v.lln or v.conversion:
            problems.append(f"{where}: only numbers have units, a conversion or limits of normal")
        if v.system is not None and (v.type != "list" or lists.system_of(v.system) is None):
            problems.append(
                f"{where}: `system` is the code system of a list's entries, one of {', '.join(lists.SYSTEMS)}"
            )
        if v.type == "list" and (v.formula or v.condition is not None or v.codes):
            problems.append(f"{where}: a list is submitted as entries; it takes no formula, condition or codes")
        if v.type == "code" and not v.codes:
            problems.append(f"{where}: a code variable needs its list of `codes`")
        if v.condition is not None:
            if v.type != "boolean":
                problems.append(f"{where}: a `condition` defines a yes/no variable; make its type boolean")
            if v.formula:
                problems.append(f"{where}: give it a `formula` or a `condition`, not both")
            if not v.condition.strip():
                problems.append(f"{where}: the `condition` is empty")

    def _check_units(self, v: VariableDef, where: str, problems: list[str]) -> None:
        """Every accepted unit must convert to the canonical one correctly; keep the conversions."""
        if v.conversion and v.conversion not in units.ANALYTE_CONVERSIONS:
            known = "; ".join(f"{c.name}: {c.description}" for c in units.ANALYTE_CONVERSIONS.values())
            problems.append(f"{where}: unknown conversion `{v.conversion}` (known: {known})")
        found: dict[str, units.Conversion] = {}
        for label in ([v.unit] if v.unit else []) + list(v.units):
            try:
                units.parse(label)
                if v.unit:
                    found[label] = units.conversion(label, v.unit, v.molar_mass, v.conversion)
            except units.UnknownUnitError as error:
                problems.append(f"{where}: {error}")
            except units.UnitMismatchError as error:
                problems.append(f"{where}: unit `{label}` does not convert to `{v.unit}`: {error.reason}")
        self.conversions[v.name] = found

    def _resolve_derivations(self, problems: list[str]) -> None:
        pending = {name: v for name, v in self.variables.items() if v.definition.formula}
        trees: dict[str, Term] = {}
        for name, variable in pending.items():
            try:
                trees[name] = parse_formula(variable.definition.formula or "")
            except RuleError as error:
                problems.append(_formula_problem(name, error))
        levels: dict[str, int] = {}

        def level_of(name: str, trail: tuple[str, ...]) -> int:
            if name in levels:
                return levels[name]
            if name in trail:
                raise ProtocolError(f"derived variables depend on each other in a cycle: {' -> '.join((*trail, name))}")
            tree = trees.get(name)
            if tree is None:
                return 0
            inputs = sorted(i for i in referenced(tree) if i in trees)
            levels[name] = 1 + max((level_of(i, (*trail, name)) for i in inputs), default=0)
            return levels[name]

        definitions = {name: v.definition for name, v in self.variables.items()}
        for name, tree in trees.items():
            try:
                level = level_of(name, ())
                checked = check_parsed(name, pending[name].definition.formula or "", tree, definitions)
            except ProtocolError as error:
                problems.extend(error.problems)
                continue
            except RuleErrors as errors:
                problems.extend(_formula_problem(name, e) for e in errors.errors)
                continue
            derivation = Derivation(
                pending[name].definition.formula or "",
                checked.expression,
                checked.inputs,
                checked.result_factor,
                level,
            )
            self.variables[name] = replace(self.variables[name], derivation=derivation)

    # -- lookups --------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Variable:
        return self.variables[name]

    def __contains__(self, name: object) -> bool:
        return name in self.variables

    def suggest(self, name: str) -> str | None:
        matches = difflib.get_close_matches(name, list(self.variables), n=1, cutoff=0.6)
        return matches[0] if matches else None

    @functools.cached_property
    def derived(self) -> list[Variable]:
        """Variables computed by formulas, shallowest first, so inputs are always computed before their users.

        Read for every subject explained; the dictionary does not change once built."""
        found = [v for v in self.variables.values() if v.derivation is not None]
        return sorted(found, key=lambda v: (v.derivation.level, v.name))  # type: ignore[union-attr]

    def bind_looks_back(self, names: frozenset[str]) -> None:
        """Record the dates some rule counts back from the screening date: one after it is a typo or an
        event still to come, never a date inside the window, so normalisation refuses it."""
        self._looks_back = names

    def bind_condition(self, name: str, fields: set[str]) -> None:
        """Record the fields a named condition reads, once the compiler has checked its rule."""
        self._condition_inputs[name] = fields

    def condition_inputs(self, name: str) -> set[str]:
        """The fields a named condition's rule reads (empty for any other variable)."""
        return set(self._condition_inputs.get(name, ()))

    def inputs_of(self, name: str) -> set[str]:
        """The submitted variables a (possibly derived) variable ultimately rests on."""
        variable = self.variables.get(name)
        if variable is None:  # a computed threshold's field: the compiler knows its source
            return set()
        found: set[str] = set()
        if variable.definition.condition is not None:
            for field_name in self._condition_inputs.get(name, ()):
                found |= self.inputs_of(field_name) if field_name in self.variables else set()
            return found
        if not variable.is_derived:
            return {name}
        for argument in variable.derivation.inputs:  # type: ignore[union-attr]
            found |= self.inputs_of(argument)
        return found

    # -- subject data ---------------------------------------------------------------------------

    def normalize(self, data: Mapping[str, Any]) -> Subject:
        """Convert submitted data to canonical values, or raise every problem found at once."""
        if not isinstance(data, Mapping):
            raise SubjectInputErrors([SubjectInputError("subject", data, "an object of variable: value")])
        errors: list[SubjectInputError] = []
        subject = Subject(values={})
        for key, raw in data.items():
            try:
                self._normalize_one(str(key), raw, subject)
            except SubjectInputError as error:
                errors.append(error)
            except SubjectInputErrors as many:  # a list names each bad entry
                errors.extend(many.errors)
        for required in ("cohort", "screening_date"):
            if required not in self.variables or required in subject.values:
                continue
            if not any(e.field == required for e in errors):
                errors.append(SubjectInputError(required, data.get(required), self._expected(self.variables[required])))
        screening = subject.values.get("screening_date")
        for name in sorted(self._looks_back):
            if screening is None or name not in subject.values:
                continue
            when = dt.date.fromordinal(screening).isoformat()
            expected = f"a date on or before the screening date {when}: the protocol counts back from it"
            value = subject.values[name]
            if isinstance(value, list):  # a history: each entry's start
                for index, entry in enumerate(value):
                    if entry.get("start") is not None and entry["start"] > screening:
                        shown = dt.date.fromordinal(entry["start"]).isoformat()
                        errors.append(SubjectInputError(f"{name}[{index}].start", shown, expected))
            elif value > screening:
                errors.append(SubjectInputError(name, data.get(name), expected))
        if errors:
            raise SubjectInputErrors(errors)
        return subject

    def _normalize_one(self, key: str, raw: Any, subject: Subject) -> None:
        variable = self.variables.get(key)
        if variable is None and key == "cohort":
            if raw is None or raw == "":
                return
            raise SubjectInputError(key, raw, "nothing: this protocol has no cohorts")
        if variable is None:
            suggestion = self.suggest(key)
            hint = f" (did you mean `{suggestion}`?)" if suggestion else ""
            name = key if key.strip() else repr(key)  # an empty name is still named, so it can be found
            raise SubjectInputError(name, raw, f"a variable of the data dictionary{hint}")
        if variable.is_derived:
            inputs = ", ".join(sorted(self.inputs_of(key)))
            raise SubjectInputError(key, raw, f"nothing: {key} is derived from {inputs}; submit those instead")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return  # absent: unknown. A list submitted empty (`[]`) is "none", and is kept.
        if variable.type == "list":
            entries, problems = lists.normalize_entries(key, raw, variable.definition.system)
            if problems:
                raise SubjectInputErrors(problems)
            subject.values[key] = entries
            return
        if variable.type == "number":
            for limit in LIMITS:
                if isinstance(raw, Mapping) and getattr(variable.definition, limit) and limit in raw:
                    given = raw[limit]
                    if isinstance(given, int | float) and not isinstance(given, bool) and "unit" in raw:
                        given = {"value": given, "unit": raw["unit"]}
                    self._normalize_one(f"{key}_{limit}", given, subject)
                    raw = {k: v for k, v in raw.items() if k != limit}
            canonical, value, unit = self._number(variable, raw)
            subject.values[key] = canonical
            subject.submitted[key] = (value, unit)
        elif variable.type == "boolean":
            subject.values[key] = self._boolean(variable, raw)
        elif variable.type == "code":
            subject.values[key] = self._code(variable, raw)
        else:
            subject.values[key] = self._date(variable, raw)

    def _expected(self, variable: Variable) -> str:
        d = variable.definition
        if variable.type == "number":
            units_text = f" in {', '.join(variable.accepted_units)}" if variable.accepted_units else ""
            bounds = self._bounds(variable)
            return f"a number{units_text}{bounds}"
        if variable.type == "boolean":
            return "true or false (yes/no)"
        if variable.type == "code":
            return "one of " + ", ".join(d.codes)
        if variable.type == "list":
            return "a list of entries {code, system, start, end, value, unit}"
        return "a date as YYYY-MM-DD"

    @staticmethod
    def _bounds(variable: Variable) -> str:
        d = variable.definition
        unit = f" {d.unit}" if d.unit else ""
        if d.minimum is not None and d.maximum is not None:
            return f" between {d.minimum:g} and {d.maximum:g}{unit}"
        if d.minimum is not None:
            return f" of at least {d.minimum:g}{unit}"
        if d.maximum is not None:
            return f" of at most {d.maximum:g}{unit}"
        return ""

    def _number(self, variable: Variable, raw: Any) -> tuple[float, float, str | None]:
        """The canonical value, the number as submitted, and the unit it was submitted in."""
        d = variable.definition
        unit: str | None = None
        value: Any = raw
        if isinstance(raw, Mapping):
            unknown = set(raw) - {"value", "unit"}
            if unknown or "value" not in raw:
                limits = "".join(f", {limit}" for limit in LIMITS if getattr(d, limit))
                raise SubjectInputError(variable.name, raw, "{value, unit" + limits + "}")
            value, unit = raw["value"], raw.get("unit")
        elif isinstance(raw, str):
            match = _NUMBER_WITH_UNIT.match(raw)
            if not match:
                raise SubjectInputError(variable.name, raw, self._expected(variable))
            value, unit = float(match.group(1)), match.group(2) or None
        shown = value if isinstance(raw, Mapping) else raw
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise SubjectInputError(variable.name, shown, self._expected(variable)) from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SubjectInputError(variable.name, shown, self._expected(variable))
        if unit and unit not in variable.accepted_units:
            accepted = ", ".join(variable.accepted_units) or "no unit"
            raise SubjectInputError(f"{variable.name}.unit", unit, f"one of {accepted}")
        canonical = float(value)
        if unit and d.unit:
            canonical = self.conversions[variable.name][unit](canonical)
        if (d.minimum is not None and canonical < d.minimum) or (d.maximum is not None and canonical > d.maximum):
            shown = f"{value} {unit}" if unit else value
            raise SubjectInputError(variable.name, shown, f"a plausible value{self._bounds(variable)}")
        return canonical, value, unit

    def _boolean(self, variable: Variable, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str):
            word = raw.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
        raise SubjectInputError(variable.name, raw, self._expected(variable))

    def _code(self, variable: Variable, raw: Any) -> str:
        if isinstance(raw, str):
            for code in variable.definition.codes:
                if code.lower() == raw.strip().lower():
                    return code
        raise SubjectInputError(variable.name, raw, self._expected(variable))

    def _date(self, variable: Variable, raw: Any) -> int:
        day = date_ordinal(raw)
        if day is None:
            raise SubjectInputError(variable.name, raw, self._expected(variable))
        return day

    def derive(self, variable: Variable, values: Mapping[str, Any]) -> float | None:
        """Compute a derived variable from canonical values; None while an input is missing, or if the
        formula has no value for them (a division by zero, the logarithm of zero)."""
        derivation = variable.derivation
        assert derivation is not None
        result = run_closure(derivation.run, values)
        if not isinstance(result, int | float) or isinstance(result, bool):
            return None
        return units.tidy(result * derivation.result_factor)


def _formula_problem(name: str, error: RuleError) -> str:
    """A formula's problem as the dictionary reports it: where, what, and the line with a caret."""
    context = error.context()
    return f"variable `{name}`: formula: {error.describe()}" + (f"\n{context}" if context else "")
