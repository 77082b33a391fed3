"""Every JSON body of API v1, declared once: requests are validated against these models and the OpenAPI
document at /api/v1/openapi.json is generated from them (see service/openapi.py).

Request bodies are strict (no coercion: `"1"` is not a version) and refuse unknown fields; query
parameters arrive as text, so their models convert (`?page=2`) but bound every number. A field's
`description` is what the error body says was expected when the field is wrong, so it is written for
the person who sent the request.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

MAX_ID = 2**31 - 1  # ids and version numbers are 32-bit integers in the database
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,79}$"

VersionNumber = Annotated[int, Field(ge=1, le=MAX_ID, description="a version number (1, 2, …)")]
Decision = Literal["eligible", "not_eligible", "incomplete"]

# -- requests ------------------------------------------------------------------------------


class Body(BaseModel):
    """A JSON request body: exactly these fields, of exactly these types."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class DecideRequest(Body):
    """Decide a subject without storing anything (drafts allowed for writers and reviewers)."""

    protocol: str = Field(description="a protocol id, e.g. NCT07193667")
    version: VersionNumber | None = Field(None, description="a version number, or nothing for the current one")
    subject: dict[str, Any] = Field(description="an object of variable: value, with cohort and screening_date")


class ScreeningRequest(Body):
    """A subject to screen and store (a JSON body, or a row of a batch CSV). The service checks what the values
    mean (the protocol exists, the date is not in the future, the inputs fit the data dictionary) once they
    have these shapes.

    `inputs`: a number alone is in the variable's unit; otherwise `{"value", "unit"}` or `"800 /µL"`;
    variables compared with their lab's limits of normal also take `"uln"` and/or `"lln"`. Booleans, codes
    and ISO dates as such. Lists (histories) as arrays of `{code, system, label, start, end, value, unit}`;
    `[]` says there are none.
    """

    protocol: str = Field(description="a protocol id, e.g. NCT07193667", examples=["NCT07193667"])
    version: VersionNumber | None = Field(None, description="a version number (1, 2, …) or nothing for the current one")
    subject_id: str = Field(pattern=IDENTIFIER, description="a pseudonymous id: 1-80 letters, digits, '.', '_' or '-'")
    site: str = Field(pattern=IDENTIFIER, description="a site code: 1-80 letters, digits, '.', '_' or '-'")
    screening_date: dt.date = Field(strict=False, description="a date as YYYY-MM-DD")
    cohort: str | None = Field(None, description="the cohort code, e.g. SLE", examples=["SLE"])
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="an object of variable: value",
        examples=[{"age": 40, "anc": {"value": 800, "unit": "/µL"}, "hbsag_positive": False}],
    )


class AmendRequest(Body):
    """Start an amendment: a draft copied from a published version."""

    from_: VersionNumber | None = Field(
        None, alias="from", description="the published version to copy, or nothing for the current one"
    )


class PublishRequest(Body):
    """An electronic signature (21 CFR Part 11): the signed-in reviewer re-enters their password and gives a
    reason; both are recorded with the version."""

    password: str = Field(description="your password, re-entered")
    reason: str = Field(description="why this version is approved")


class ImpactRequest(Body):
    """Replay the screenings of version `from` under version `to` (published or draft)."""

    from_: VersionNumber = Field(alias="from", description="the version whose screenings are replayed")
    to: VersionNumber = Field(description="the version they are replayed under")


class Query(BaseModel):
    """Query parameters: text converted and bounded; an empty parameter counts as absent."""

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v not in ("", None)}
        return data


class Paging(Query):
    page: int = Field(1, ge=1, le=10**9, description="a page number from 1 to 1000000000")
    per_page: int = Field(100, ge=1, le=1000, description="a page size from 1 to 1000")


class LogFilters(Query):
    """Filters of the screening log (the API's, its CSV export's and the log page's)."""

    protocol: str | None = Field(None, description="a protocol id")
    version: VersionNumber | None = None
    site: str | None = Field(None, description="a site code")
    decision: Decision | None = Field(None, description="one of eligible, not_eligible, incomplete")
    from_: dt.date | None = Field(None, alias="from", description="a date as YYYY-MM-DD")
    to: dt.date | None = Field(None, description="a date as YYYY-MM-DD")
    subject_id: str | None = Field(None, description="a subject's pseudonymous id")
    cohort: str | None = Field(None, description="a cohort code")


class LogQuery(LogFilters, Paging):
    """Filters of the screening log, and its page."""

    per_page: int = Field(50, ge=1, le=500, description="a page size from 1 to 500")


class ExportQuery(Query):
    format: Literal["yaml", "json"] = Field("yaml", description="yaml or json")


class DiffQuery(Query):
    from_: VersionNumber = Field(alias="from", description="the version compared from")
    to: VersionNumber = Field(description="the version compared to")
    format: Literal["json", "markdown"] = Field("json", description="json or markdown")


class SummaryQuery(Query):
    from_: VersionNumber | None = Field(
        None, alias="from", description="the version compared from; default the one this version was amended from"
    )
    format: Literal["json", "markdown", "csv"] = Field("json", description="json, markdown or csv")


class BatchQuery(Query):
    protocol: str = Field(description="a protocol id")
    version: VersionNumber | None = None


class Headers(BaseModel):
    """Request headers the API reads (every other header is left alone)."""

    model_config = ConfigDict(populate_by_name=True)


class ScreeningHeaders(Headers):
    idempotency_key: str | None = Field(
        None,
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,200}$",
        description=(
            "1 to 200 visible ASCII characters, e.g. a UUID: a retry with the same key answers the screening "
            "stored the first time (header `Idempotent-Replayed: true`); the same key with another request is 422"
        ),
    )


class BatchHeaders(Headers):
    idempotency_key: str | None = Field(
        None,
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,190}$",  # each row is stored under `<key>#row<n>`
        description="1 to 190 visible ASCII characters: the same batch sent again answers the rows stored then",
    )


class IeQuery(Query):
    protocol: str = Field(description="a protocol id")
    version: VersionNumber | None = None
    site: str | None = Field(None, description="a site code")


# -- responses -----------------------------------------------------------------------------


class Problem(BaseModel):
    """One thing wrong: the field, the value sent and what was expected. Some errors add their own keys
    (`row` in a batch, `test_case`/`got` when publication is refused, `line`/`column` in a rule)."""

    model_config = ConfigDict(extra="allow")

    field: str | None = None
    value: Any = None
    expected: Any = None


class ErrorDetail(BaseModel):
    status: int
    message: str
    errors: list[Problem] | None = None


class ErrorBody(BaseModel):
    """Every error of the API: `{"error": {"status", "message", "errors": [{"field", "value", "expected"}]}}`."""

    error: ErrorDetail


class Cohort(BaseModel):
    code: str
    label: str


class Version(BaseModel):
    protocol: str
    version: int
    status: Literal["draft", "published", "retired"]
    title: str
    content_hash: str | None
    based_on: int | None
    created_at: dt.datetime | None
    published_at: dt.datetime | None
    published_by: str | None = Field(description="who signed the publication")
    publish_reason: str | None = Field(description="the reason given with the signature")


class VersionDetail(Version):
    """A version with its data dictionary and criteria, as in its protocol file."""

    cohorts: list[dict[str, Any]]
    variables: list[dict[str, Any]]
    criteria: list[dict[str, Any]]
    value_sets: list[dict[str, Any]]
    test_cases: int


class ProtocolSummary(BaseModel):
    protocol: str
    title: str
    current_version: int | None
    content_hash: str | None
    cohorts: list[Cohort]
    versions: list[Version]


class ProtocolList(RootModel[list[ProtocolSummary]]):
    """Every protocol, with its versions."""


class ProtocolDetail(BaseModel):
    protocol: str
    title: str
    current_version: int | None
    versions: list[Version]


class CriterionResult(BaseModel):
    code: str
    kind: Literal["inclusion", "exclusion"]
    section: str
    text: str
    cohorts: list[str]
    outcome: Literal["pass", "fail", "unknown", "not_applicable"]
    sentence: str
    missing: list[str]
    rules_fired: list[str]
    condition: dict[str, Any] | None
    notes: str


class DecisionResult(BaseModel):
    """A decision and its explanation, criterion by criterion."""

    decision: Decision
    protocol: str
    version: str
    content_hash: str
    cohort: str
    screening_date: str
    criteria: list[CriterionResult]
    missing: list[str]
    derived: dict[str, dict[str, Any]]
    rules_fired: list[str]


class RecordLink(BaseModel):
    """This screening's link in the hash-chained decision record (`eligo verify` checks the chain)."""

    seq: int
    hash: str = Field(description="sha256 over the inputs, the version hash, the result and the previous hash")


class Screening(BaseModel):
    """A stored screening; `inputs`, `result` and `record` in full views, not in the log's pages."""

    id: int
    protocol: str
    version: int
    content_hash: str
    subject_id: str
    site: str
    cohort: str
    screening_date: dt.date
    decision: Decision
    previous_id: int | None = Field(description="this subject's previous screening at the same site")
    created_at: dt.datetime
    created_by: str | None
    inputs: dict[str, Any] | None = None
    result: DecisionResult | None = None
    record: RecordLink | None = None


class ScreeningPage(BaseModel):
    items: list[Screening]
    page: int
    per_page: int
    total: int


class Replay(BaseModel):
    screening_id: int
    same: bool = Field(description="whether deciding again gave the same record")
    result: DecisionResult


class BatchRow(BaseModel):
    row: int
    screening_id: int
    subject_id: str
    decision: Decision
    failed: list[str]
    unknown: list[str]
    missing: list[str]


class BatchAnswer(BaseModel):
    screened: int
    rows: list[BatchRow]


class BatchRun(BaseModel):
    """A background batch; once done, every row's answer."""

    id: int
    status: Literal["running", "done", "failed"]
    stored: bool = Field(description="whether the batch's rows are in the screening log (all of them) or not (none)")
    total: int
    processed: int
    error: dict[str, Any] | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    screened: int | None = None
    rows: list[BatchRow] | None = None


class ImpactRun(BaseModel):
    id: int
    protocol: str
    from_version: int
    to_version: int
    to_status: str
    to_content_hash: str | None
    status: Literal["running", "done", "cancelled", "failed"]
    total: int
    processed: int
    changed: int
    transitions: dict[str, int]
    criteria: dict[str, int] = Field(description="criterion code: screenings it changed")
    error: dict[str, Any] | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class ImpactChange(BaseModel):
    screening_id: int
    subject_id: str
    site: str
    before: str
    after: str
    causes: list[Any]
    url: str


class ImpactChanges(BaseModel):
    items: list[ImpactChange]
    page: int
    per_page: int
    total: int


class Rebase(BaseModel):
    version: int
    based_on: int | None
    taken_from_current: list[Any]
    conflicts: list[dict[str, Any]]


class Diff(BaseModel):
    protocol: str
    before: str
    after: str
    criteria: list[dict[str, Any]]
    variables: list[dict[str, Any]]
    cohorts: list[dict[str, Any]]
    value_sets: list[dict[str, Any]]


class SummaryRow(BaseModel):
    criterion: str
    change: str
    before: str
    after: str
    rationale: str
    affected: int | None


class Summary(BaseModel):
    from_: int = Field(alias="from")
    to: int
    rows: list[SummaryRow]
    replay: dict[str, Any] | None
