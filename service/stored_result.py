"""The result a screening stores: what the engine decided, compact; its explanation derived from it.

A screening used to store its whole explanation, about 42 KB of JSON encoded three times a request.
It now stores what the engine produced and what the log reads, about 4 KB:

    {"format": "engine-1", "protocol", "version", "content_hash", "cohort", "screening_date",
     "decision", "missing": [...], "criteria": [{"code", "outcome"}, ...],
     "values": {the engine's final facts}, "rules_fired": [...]}

`criteria`, `decision` and `missing` read as they did (the log, its CSV, attrition, impact runs,
batch answers read only those). The explanation shown on a screening is derived from the stored
facts and rules by rules/explain.py (`expand`), never by deciding again: the engine's record stays
what was decided, and it is what the decision record hashes. Results stored before (no `format`)
are whole explanations and are shown as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rules.compiler import CompiledProtocol
from rules.decision import Decision, combine
from rules.dictionary import Subject
from rules.engine import Evaluation
from rules.explain import Explainer, explain, fired_by_criterion

FORMAT = "engine-1"


def compact(decision: Decision, evaluation: Evaluation) -> dict[str, Any]:
    """What is stored for a decision: the summary the log reads and the engine's facts and rules."""
    return {
        "format": FORMAT,
        "protocol": decision.protocol,
        "version": decision.version,
        "content_hash": decision.content_hash,
        "cohort": decision.cohort,
        "screening_date": decision.screening_date,
        "decision": decision.decision,
        "missing": list(decision.missing),
        "criteria": [{"code": c.code, "outcome": c.outcome} for c in decision.criteria],
        "values": evaluation.values,
        "rules_fired": list(evaluation.fired),
    }


def summarize(compiled: CompiledProtocol, subject: Subject, evaluation: Evaluation) -> dict[str, Any]:
    """`compact(explain(...), evaluation)` without explaining every criterion (batches): only the
    undecided ones are explained, for the variables they miss. The rest is derived when shown."""
    explainer = Explainer(compiled, subject, evaluation.values)
    fired: dict[str, list[str]] | None = None
    criteria, missing = [], set()
    for plan in explainer.criterion_plans:
        code = plan.code
        outcome = evaluation.outcomes[code]
        criteria.append({"code": code, "outcome": outcome})
        if outcome == "unknown":
            fired = fired if fired is not None else fired_by_criterion(compiled, evaluation)
            missing.update(explainer.criterion(plan, outcome, fired.get(code, [])).missing)
    definition = compiled.definition
    return {
        "format": FORMAT,
        "protocol": definition.protocol,
        "version": definition.version,
        "content_hash": compiled.content_hash,
        "cohort": subject.cohort,
        "screening_date": subject.screening_date.isoformat(),
        "decision": combine([c["outcome"] for c in criteria]),
        "missing": sorted(missing),
        "criteria": criteria,
        "values": evaluation.values,
        "rules_fired": list(evaluation.fired),
    }


def canonical(result: Mapping[str, Any]) -> str:
    """The one encoding of a stored result: stored as this text and hashed as it (service/record.py)."""
    return json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def is_compact(result: Mapping[str, Any]) -> bool:
    return result.get("format") == FORMAT


def expand(compiled: CompiledProtocol, result: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The whole explanation of a stored result (as `Decision.to_dict()` gave it when decided).

    `compiled` is the version that decided it (same content hash); `inputs` the screening's inputs as
    stored, normalised again only for what the explanation quotes as submitted (units, raw values).
    """
    if not is_compact(result):
        return dict(result)
    subject = {**inputs, "screening_date": result["screening_date"]}
    if result["cohort"]:
        subject["cohort"] = result["cohort"]
    evaluation = Evaluation(
        values=dict(result["values"]),
        outcomes={c["code"]: c["outcome"] for c in result["criteria"]},
        fired=list(result["rules_fired"]),
    )
    return explain(compiled, compiled.dictionary.normalize(subject), evaluation).to_dict()
