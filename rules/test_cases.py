"""Run a protocol's own test cases: what each expects and what the engine gives, in one comparable form.

Publishing runs them (service/versions.py) and so do the tests of the shipped protocols; one
reading of a test case keeps "passes when published" and "passes in the tests" the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rules import Evaluator, decide
from rules.compiler import CompiledProtocol
from rules.errors import SubjectInputErrors
from rules.protocol import REFUSED, TestCaseDef

__test__ = False  # not a pytest module, whatever its name says


def expected_of(case: TestCaseDef) -> dict[str, Any]:
    """What a test case asserts: the decision, the outcomes it names, the missing variables if given;
    or, for `expect: refused`, the fields its input is refused on."""
    if case.expect == REFUSED:
        return {"refused": sorted(case.refused)}
    expected: dict[str, Any] = {"decision": case.expect, **{f"outcome {k}": v for k, v in case.outcomes.items()}}
    if case.missing is not None:
        expected["missing"] = list(case.missing)
    return expected


def result_of(compiled: CompiledProtocol, case: TestCaseDef, engine: Evaluator | None = None) -> dict[str, Any]:
    """What the engine gives for the test case's subject, in the shape of `expected_of`."""
    try:
        decision = decide(compiled, case.subject, engine)
    except SubjectInputErrors as error:
        return {"refused": sorted({e.field for e in error.errors}), "input errors": [str(e) for e in error.errors]}
    got: dict[str, Any] = {"decision": decision.decision}
    for code in case.outcomes:
        try:
            got[f"outcome {code}"] = decision.outcome(code)
        except KeyError:
            got[f"outcome {code}"] = "no such criterion"
    if case.missing is not None:
        got["missing"] = decision.missing
    return got


def passes(expected: dict[str, Any], got: dict[str, Any]) -> bool:
    """A refused case passes on the fields alone; the errors' wording is shown, not compared."""
    return {k: v for k, v in got.items() if k != "input errors"} == expected


OUTCOME_VALUES = ("pass", "fail", "unknown", "not_applicable")
DECISION_VALUES = ("eligible", "not_eligible", "incomplete", REFUSED)


@dataclass(frozen=True)
class CaseRun:
    """One test case run: what it expects, what the engine gave, and whether they agree."""

    name: str
    expected: dict[str, Any]
    got: dict[str, Any]

    @property
    def passed(self) -> bool:
        return passes(self.expected, self.got)

    def rows(self) -> list[tuple[str, Any, Any, bool]]:
        """Each thing the case checks (decision, each criterion's outcome, missing) with what came, and a match."""
        keys = [*self.expected, *(k for k in self.got if k not in self.expected and k != "input errors")]
        return [(k, self.expected.get(k), self.got.get(k), self.expected.get(k) == self.got.get(k)) for k in keys]


def run(compiled: CompiledProtocol, cases: Sequence[TestCaseDef], engine: Evaluator | None = None) -> list[CaseRun]:
    """Every case run, passing or not, in the order given. The cases are passed apart from the compiled
    protocol: they are not part of its content hash, so a cached compiled version may predate them."""
    return [CaseRun(c.name, expected_of(c), result_of(compiled, c, engine)) for c in cases]


@dataclass(frozen=True)
class CaseProblem:
    """Something in a test case that can never be checked as written; `field` names where it is."""

    field: str
    value: Any
    expected: str

    def __str__(self) -> str:
        return f"{self.field}: got {self.value!r}, expected {self.expected}"


def check(compiled: CompiledProtocol, case: TestCaseDef) -> list[CaseProblem]:
    """Every problem of one test case against its protocol, at once: a subject the dictionary refuses
    (unknown variable, value out of range or unparsable), an unknown decision, criterion code or
    outcome, an unknown variable said to be missing. A case expecting `refused` may hold bad input."""
    problems: list[CaseProblem] = []
    variables = compiled.dictionary.variables
    if case.expect not in DECISION_VALUES:
        problems.append(CaseProblem("expect", case.expect, f"one of {', '.join(DECISION_VALUES)}"))
    if case.expect != REFUSED:
        try:
            compiled.dictionary.normalize(case.subject)
        except SubjectInputErrors as errors:
            problems.extend(CaseProblem(e.field, e.value, e.expected) for e in errors.errors)
    codes = [c.code for c in compiled.definition.criteria]
    for code, outcome in case.outcomes.items():
        if code not in codes:
            problems.append(CaseProblem(f"outcome {code}", code, f"a criterion code: {', '.join(codes)}"))
        elif outcome not in OUTCOME_VALUES:
            problems.append(CaseProblem(f"outcome {code}", outcome, f"one of {', '.join(OUTCOME_VALUES)}"))
    for name in case.missing or ():
        if _variable_of(name) not in variables:
            problems.append(CaseProblem("missing", name, "a variable of the data dictionary"))
    for name in case.refused:  # a case may submit an unknown name to see it refused
        if _variable_of(name) not in {*variables, *case.subject, "cohort"}:
            problems.append(CaseProblem("refused", name, "a variable of the data dictionary"))
    return problems


def _variable_of(name: str) -> str:
    """The variable a field path names: `medications[1].start` is about `medications`."""
    return name.split(".")[0].split("[")[0]
