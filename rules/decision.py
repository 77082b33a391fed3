"""The decision for one subject and its explanation, as returned to every caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The decision for a subject; a StrEnum, so it is stored and sent as the plain string."""

    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    INCOMPLETE = "incomplete"


class Outcome(StrEnum):
    """One criterion's outcome for a subject."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


ELIGIBLE, NOT_ELIGIBLE, INCOMPLETE = Verdict.ELIGIBLE, Verdict.NOT_ELIGIBLE, Verdict.INCOMPLETE


@dataclass(slots=True)
class CriterionResult:
    code: str
    kind: str
    section: str
    text: str
    cohorts: list[str]
    outcome: str  # pass, fail, unknown, not_applicable
    sentence: str
    missing: list[str] = field(default_factory=list)
    rules_fired: list[str] = field(default_factory=list)
    condition: dict[str, Any] | None = None
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "kind": self.kind,
            "section": self.section,
            "text": self.text,
            "cohorts": self.cohorts,
            "outcome": self.outcome,
            "sentence": self.sentence,
            "missing": self.missing,
            "rules_fired": self.rules_fired,
            "condition": self.condition,
            "notes": self.notes,
        }


@dataclass
class Decision:
    decision: str
    protocol: str
    version: str
    content_hash: str
    cohort: str
    screening_date: str
    criteria: list[CriterionResult]
    missing: list[str]
    derived: dict[str, dict[str, Any]]
    rules_fired: list[str]

    @property
    def failed(self) -> list[CriterionResult]:
        return [c for c in self.criteria if c.outcome == "fail"]

    @property
    def unknown(self) -> list[CriterionResult]:
        return [c for c in self.criteria if c.outcome == "unknown"]

    def outcome(self, code: str) -> str:
        for criterion in self.criteria:
            if criterion.code == code:
                return criterion.outcome
        raise KeyError(code)

    def outcomes(self) -> dict[str, str]:
        return {c.code: c.outcome for c in self.criteria}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON. Shallow on purpose: the explanation trees are already plain dicts, and
        dataclasses.asdict deep-copied them at about a millisecond a subject."""
        data = dict(vars(self))
        data["criteria"] = [c.to_dict() for c in self.criteria]
        return data


def combine(outcomes: list[str]) -> str:
    """Any failure decides; otherwise anything unknown leaves the decision incomplete."""
    if "fail" in outcomes:
        return NOT_ELIGIBLE
    if "unknown" in outcomes:
        return INCOMPLETE
    return ELIGIBLE
