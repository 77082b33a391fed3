"""The live rule editor's two answers: every problem of a rule as typed, and the words it may use.

The Criterion and named-condition forms call these through CriterionView's JSON endpoints
(static/rule_editor.js) while the writer types, before anything is saved. The checks are the
save-time ones (admin/validators.py): the same parser, checker and dictionary, so the editor never
promises what saving then refuses. Nothing is compiled for the engine here (DESIGN.md: drafts
must not leak rulesets into the service).
"""

from __future__ import annotations

from typing import Any

from rules.checker import check_rule
from rules.dictionary import DataDictionary
from rules.errors import RuleErrors
from rules.preview import preview
from service.infra.models import ProtocolVersion

KINDS = ("inclusion", "exclusion")
MAX_TEXT = 4000  # a rule is a few lines; a longer text is refused, not parsed


class CheckRequestError(ValueError):
    """A check request that names no usable version, kind or text; says which field and what is expected."""

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field, self.value, self.expected = field, value, expected
        super().__init__(f"{field}: got {str(value)[:60]!r}, expected {expected}")

    def as_dict(self) -> dict[str, object]:
        return {"field": self.field, "value": str(self.value)[:60], "expected": self.expected}


def read_request(body: Any) -> tuple[int, str | None, str]:
    """The version id, kind (None: a named condition) and text of a check request, or the first problem."""
    if not isinstance(body, dict):
        raise CheckRequestError("body", type(body).__name__, 'a JSON object {"version_id", "kind", "text"}')
    version_id, kind, text = body.get("version_id"), body.get("kind"), body.get("text")
    if isinstance(version_id, str) and version_id.isdigit():
        version_id = int(version_id)
    if not isinstance(version_id, int) or isinstance(version_id, bool) or not 0 < version_id < 2**31:
        raise CheckRequestError("version_id", version_id, "the id of a protocol version")
    if kind in ("", "condition"):
        kind = None
    if kind is not None and kind not in KINDS:
        raise CheckRequestError("kind", kind, "inclusion, exclusion, or null for a named condition")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise CheckRequestError("text", text, f"the rule's text, at most {MAX_TEXT:,} characters")
    return version_id, kind, text


def check(version: ProtocolVersion, kind: str | None, text: str) -> dict[str, Any]:
    """Every problem at once, the dictionary's and the rule's, and the preview sentence when there are none.

    A dictionary problem has no place in the rule's text (line and column are null); the rule is still
    checked against what of the dictionary holds, so the writer sees its own problems beside them.
    """
    dictionary = DataDictionary(version.to_definition(), strict=False)
    problems: list[dict[str, Any]] = [
        {"source": "dictionary", "message": p, "line": None, "column": None, "suggestion": None, "context": None}
        for p in dictionary.problems
    ]
    answer: dict[str, Any] = {"problems": problems, "preview": None}
    if not text.strip():
        return answer
    try:
        checked = check_rule(text, dictionary, kind=kind)
    except RuleErrors as errors:
        problems.extend({"source": "rule", **error.as_dict()} for error in errors.errors)
        return answer
    answer["preview"] = preview(checked, dictionary, kind)
    return answer


def vocabulary(version: ProtocolVersion) -> dict[str, Any]:
    """What a rule of this version may name: variables (with their units and codes), value sets, units."""
    variables = [
        {
            "name": v.name,
            "label": v.label,
            "type": v.type,
            "unit": v.unit,
            "units": list(v.units or ()),
            "codes": list(v.codes or ()),
            "uln": bool(v.uln),
        }
        for v in version.variables
    ]
    builtins: list[dict[str, Any]] = [
        {"name": "screening_date", "label": "Screening date", "type": "date", "unit": None, "units": []}
    ]
    value_sets = [{"name": s.name, "label": s.label, "system": s.system} for s in version.value_sets]
    known_units = sorted({u for v in version.variables for u in [v.unit, *(v.units or ())] if u} | _COMMON_UNITS)
    return {"variables": variables + builtins, "value_sets": value_sets, "units": known_units}


# Units a writer reaches for besides the dictionary's own: windows and counts.
_COMMON_UNITS = frozenset({"days", "weeks", "months", "years", "hours", "x ULN", "x LLN", "%"})
