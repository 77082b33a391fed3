"""Run a protocol's own test cases: what each expects and what the engine gives, in one comparable form.

Publishing runs them (service/versions.py) and so do the tests of the shipped protocols; one
reading of a test case keeps "passes when published" and "passes in the tests" the same thing.
"""

from __future__ import annotations

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
