"""`POST /api/v1/protocols/<code>/prefill`: a FHIR Bundle in, the screening inputs it gives out, each with its source.

Nothing is decided or stored: the answer's `values` are `inputs` for `POST /screenings`, once the
screener has confirmed them; `lacking` names what the bundle does not give. The bodies are pydantic
models, declared to spectree with the rest of the API (service/openapi.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field

from service import fhir
from service.auth import api_roles
from service.errors import InvalidInput
from service.infra.registry import registry
from service.screenings import EARLIEST_SCREENING
from service.versions import find_version
from service.web.openapi import responses, spec

bp = Blueprint("fhir_api", __name__)


class PrefillRequest(BaseModel):
    """A FHIR R4 or R5 Bundle of one subject's records, and the screening it is to prefill."""

    model_config = ConfigDict(extra="forbid")

    bundle: dict[str, Any] = Field(description="A FHIR Bundle (resourceType Bundle), R4 or R5")
    screening_date: dt.date | None = Field(None, description="Age and look-back windows count from it; today if absent")
    cohort: str | None = Field(None, description="The cohort screened for: only what its criteria use is prefilled")
    version: int | None = Field(None, ge=1, description="The protocol version; the current one if absent")
    fhir_version: Literal["R4", "R5"] | None = Field(None, description="R4 then R5 are tried if absent")
    lookback_days: int = Field(fhir.DEFAULT_LOOKBACK_DAYS, ge=1, le=3650, description="How old a result may be")


class SourceOut(BaseModel):
    resource: str = Field(description="resourceType/id, e.g. Observation/hgb-1")
    date: str | None = Field(description="The day the value is of")
    code: str | None = Field(description="system|code that matched, or the Patient element read")
    recorded: str = Field(description="The value as the record has it")


class LackingOut(BaseModel):
    variable: str
    label: str
    reason: str


class NoteOut(BaseModel):
    variable: str
    resource: str
    reason: str


class PrefillResponse(BaseModel):
    protocol: str
    version: int
    cohort: str | None
    screening_date: dt.date
    fhir_version: Literal["R4", "R5"]
    values: dict[str, Any] = Field(description="Inputs for POST /screenings, in the API's form")
    sources: dict[str, SourceOut]
    lacking: list[LackingOut] = Field(description="Variables the cohort's criteria use that the bundle does not give")
    notes: list[NoteOut] = Field(description="Records that matched a variable but could not be used, and why")


def prefill_for(code: str, body: PrefillRequest) -> PrefillResponse:
    """The domain call behind the view: the version, the checks on cohort and date, the mapping."""
    version = find_version(code, body.version)
    compiled = registry().compiled(version)
    cohorts = [c.code for c in compiled.definition.cohorts]
    if body.cohort is not None and body.cohort not in cohorts:
        expected = f"one of {', '.join(cohorts)}" if cohorts else "nothing: this protocol has no cohorts"
        raise InvalidInput("unknown cohort", [{"field": "cohort", "value": body.cohort, "expected": expected}])
    screening_date = body.screening_date or dt.date.today()
    latest = dt.date.today() + dt.timedelta(days=1)
    if not EARLIEST_SCREENING <= screening_date <= latest:
        expected = f"a date from {EARLIEST_SCREENING.isoformat()} to {latest.isoformat()}"
        raise InvalidInput(
            "the screening date is out of range",
            [{"field": "screening_date", "value": screening_date.isoformat(), "expected": expected}],
        )
    try:
        found = fhir.prefill(
            compiled,
            body.bundle,
            screening_date=screening_date,
            cohort=body.cohort,
            fhir_version=body.fhir_version,
            lookback_days=body.lookback_days,
        )
    except fhir.FhirBundleError as error:
        problems = [{**p, "field": f"bundle.{p['field']}"} for p in error.problems]
        raise InvalidInput(error.message, problems) from None
    return PrefillResponse(
        protocol=version.protocol.code,
        version=version.number,
        cohort=body.cohort,
        screening_date=screening_date,
        fhir_version=found.fhir_version,
        values=found.values,
        sources={name: SourceOut(**source.as_dict()) for name, source in found.sources.items()},
        lacking=[LackingOut(**item) for item in found.lacking],
        notes=[NoteOut(**item) for item in found.notes],
    )


@bp.post("/protocols/<code>/prefill")
@api_roles("screener")
@spec.validate(json=PrefillRequest, resp=responses(PrefillResponse, 400, 404, 422), tags=["screenings"])
def prefill(code: str, json: PrefillRequest):
    """Prefill a screening from a FHIR R4/R5 Bundle: the inputs it gives, each with its source; nothing stored."""
    return jsonify(prefill_for(code, json).model_dump(mode="json"))
