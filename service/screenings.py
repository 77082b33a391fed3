"""Screenings: decide a submitted subject, keep the record, replay it, list and export the log."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

import rules
from rules.decision import Decision
from rules.errors import SubjectInputError, SubjectInputErrors
from service import csvsafe
from service import record as decision_record
from service.auth import check_site
from service.engine import engine
from service.errors import ApiError
from service.models import PUBLISHED, Protocol, ProtocolVersion, Screening, db, iso, utcnow
from service.registry import registry
from service.versions import VersionError, find_version

REQUEST_FIELDS = ("protocol", "version", "subject_id", "site", "screening_date", "cohort", "inputs")
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,79}$")
DECISIONS = ("eligible", "not_eligible", "incomplete")
# Windows are counted back from the screening date (years, half-lives): far earlier dates overflow.
EARLIEST_SCREENING = dt.date(1900, 1, 1)


@dataclass(frozen=True)
class ScreeningRequest:
    protocol: str
    version: int | None
    subject_id: str
    site: str
    screening_date: dt.date
    cohort: str
    inputs: dict[str, Any]

    def subject(self) -> dict[str, Any]:
        cohort = {"cohort": self.cohort} if self.cohort else {}  # a trial without cohorts takes none
        return {**self.inputs, **cohort, "screening_date": self.screening_date.isoformat()}


def _problem(field: str, value: Any, expected: str) -> dict[str, Any]:
    shown = value if isinstance(value, str | int | float | bool | None) else json.dumps(value)[:200]
    return {"field": field, "value": shown, "expected": expected}


def parse_request(data: Mapping[str, Any], today: dt.date | None = None) -> ScreeningRequest:
    """Check a screening request's envelope; every problem is reported with its field."""
    problems = [_problem(k, data[k], f"one of {', '.join(REQUEST_FIELDS)}") for k in data if k not in REQUEST_FIELDS]
    if problems:
        raise ApiError(400, "unknown fields in the request", problems)

    def text(field: str, pattern: re.Pattern[str] | None = None, what: str = "a non-empty string") -> str:
        value = data.get(field)
        if not isinstance(value, str) or not value.strip() or (pattern and not pattern.match(value)):
            problems.append(_problem(field, value, what))
            return ""
        return value.strip()

    protocol = text("protocol", what="a protocol id, e.g. NCT07193667")
    subject_id = text("subject_id", IDENTIFIER, "a pseudonymous id: 1-80 letters, digits, '.', '_' or '-'")
    site = text("site", IDENTIFIER, "a site code: 1-80 letters, digits, '.', '_' or '-'")
    cohort = text("cohort", what="the cohort code") if data.get("cohort") is not None else ""
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        problems.append(_problem("version", version, "a version number (1, 2, …) or nothing for the current one"))
    screening_date = dt.date.min
    raw_date = data.get("screening_date")
    try:
        screening_date = dt.date.fromisoformat(raw_date) if isinstance(raw_date, str) else None  # type: ignore[assignment]
    except ValueError:
        screening_date = None  # type: ignore[assignment]
    latest = (today or dt.date.today()) + dt.timedelta(days=1)
    if screening_date is None or not EARLIEST_SCREENING <= screening_date <= latest:
        problems.append(
            _problem(
                "screening_date",
                raw_date,
                f"a date as YYYY-MM-DD, from {EARLIEST_SCREENING.isoformat()} to {latest.isoformat()}",
            )
        )
    inputs = data.get("inputs", {})
    if not isinstance(inputs, dict):
        problems.append(_problem("inputs", inputs, "an object of variable: value"))
        inputs = {}
    for key in ("cohort", "screening_date"):
        if key in inputs:
            problems.append(_problem(f"inputs.{key}", inputs[key], f"nothing: give {key} beside inputs, not inside"))
    if problems:
        raise ApiError(422, "the screening request cannot be used", problems)
    return ScreeningRequest(protocol, version, subject_id, site, screening_date, cohort, inputs)


def input_problems(error: SubjectInputErrors | SubjectInputError) -> list[dict[str, Any]]:
    errors = error.errors if isinstance(error, SubjectInputErrors) else [error]
    out = []
    for e in errors:
        field = e.field if e.field.split(".")[0] in ("cohort", "screening_date") else f"inputs.{e.field}"
        out.append({**e.as_dict(), "field": field})
    return out


def version_for(request: ScreeningRequest) -> ProtocolVersion:
    try:
        version = find_version(request.protocol, request.version)
    except VersionError as error:
        raise ApiError(
            error.status, error.message, [_problem(error.field or "protocol", error.value, "an existing one")]
        ) from None
    if version.status != PUBLISHED:
        raise ApiError(
            422,
            f"version {version.number} is {version.status}; screenings are decided by published versions",
            [_problem("version", version.number, "a published version")],
        )
    return version


def decide(request: ScreeningRequest) -> tuple[ProtocolVersion, Decision]:
    version = version_for(request)
    try:
        return version, rules.decide(registry().compiled(version), request.subject(), engine())
    except (SubjectInputErrors, SubjectInputError) as error:
        raise ApiError(422, "the subject's data cannot be used as submitted", input_problems(error)) from None


def record(
    request: ScreeningRequest,
    version: ProtocolVersion,
    decision: Decision | Mapping[str, Any],
    created_by: str | None,
    idempotency_key: str | None = None,
) -> Screening:
    """Write the screening, linked to the subject's previous one at this site under this protocol, and
    chain its record. The decision is a `Decision` or its plain form (`Decision.to_dict()`)."""
    result = decision.to_dict() if isinstance(decision, Decision) else dict(decision)
    previous = db.session.execute(
        select(Screening.id)
        .where(
            Screening.protocol_id == version.protocol_id,
            Screening.site == request.site,  # subject ids are pseudonyms chosen per site
            Screening.subject_id == request.subject_id,
        )
        .order_by(Screening.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    screening = Screening(
        protocol_id=version.protocol_id,
        version_id=version.id,
        content_hash=result["content_hash"],
        subject_id=request.subject_id,
        site=request.site,
        cohort=result["cohort"],
        screening_date=request.screening_date,
        inputs=request.inputs,
        decision=result["decision"],
        result=result,
        previous_id=previous,
        created_at=utcnow(),
        created_by=created_by,
        idempotency_key=idempotency_key,
    )
    db.session.add(screening)
    db.session.flush()
    decision_record.append(db.session.connection(), {name: getattr(screening, name) for name in decision_record.HASHED})
    return screening


def screen(
    data: Mapping[str, Any], created_by: str | None = None, idempotency_key: str | None = None
) -> tuple[Screening, bool]:
    """Decide and store a screening; with a key already used by this user, the screening stored then.

    Returns the screening and whether it was stored by this call. A client that lost the answer
    retries with the same key and can never store the subject twice, even when both calls race.
    """
    request = parse_request(data)
    check_site(request.site)
    if idempotency_key and (earlier := _by_key(created_by, idempotency_key)):
        return _same_request(earlier, request, idempotency_key), False
    version, decision = decide(request)
    try:
        screening = record(request, version, decision, created_by, idempotency_key)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if not idempotency_key or not (earlier := _by_key(created_by, idempotency_key)):
            raise
        return _same_request(earlier, request, idempotency_key), False
    return screening, True


class KeyReused(ApiError):
    """An idempotency key already stored a different screening."""


def _by_key(created_by: str | None, key: str) -> Screening | None:
    return db.session.execute(
        select(Screening).where(Screening.created_by == created_by, Screening.idempotency_key == key)
    ).scalar_one_or_none()


def _same_request(earlier: Screening, request: ScreeningRequest, key: str) -> Screening:
    """The request as the service reads it, not as it was typed: `sle` is the cohort stored as `SLE`,
    and inputs compare as they are stored (JSON)."""
    asked = (
        request.protocol,
        request.subject_id,
        request.site,
        request.cohort.casefold(),
        request.screening_date,
        json.loads(json.dumps(request.inputs)),
    )
    stored = (
        earlier.protocol.code,
        earlier.subject_id,
        earlier.site,
        earlier.cohort.casefold(),
        earlier.screening_date,
        earlier.inputs,
    )
    if asked != stored or request.version not in (None, earlier.version.number):
        raise KeyReused(
            422,
            "this Idempotency-Key was used for a different screening",
            [_problem("Idempotency-Key", key, f"a new key, or the same request as screening {earlier.id}")],
        )
    return earlier


def replay(screening: Screening) -> tuple[bool, dict[str, Any]]:
    """Decide a stored screening again under its own version: must give the same record."""
    compiled = registry().compiled(screening.version)
    subject = {
        **screening.inputs,
        "cohort": screening.cohort,
        "screening_date": screening.screening_date.isoformat(),
    }
    again = json.loads(json.dumps(rules.decide(compiled, subject, engine()).to_dict()))
    return again == screening.result and compiled.content_hash == screening.content_hash, again


def describe(screening: Screening, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": screening.id,
        "protocol": screening.protocol.code,
        "version": screening.version.number,
        "content_hash": screening.content_hash,
        "subject_id": screening.subject_id,
        "site": screening.site,
        "cohort": screening.cohort,
        "screening_date": screening.screening_date.isoformat(),
        "decision": screening.decision,
        "previous_id": screening.previous_id,
        "created_at": iso(screening.created_at),
        "created_by": screening.created_by,
    }
    if full:
        data["inputs"] = screening.inputs
        data["result"] = screening.result
        record = screening.record
        data["record"] = {"seq": record.seq, "hash": record.record_hash} if record else None
    return data


# -- the screening log ---------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilter:
    protocol: str | None = None
    version: int | None = None
    site: str | None = None
    decision: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    subject_id: str | None = None
    cohort: str | None = None


def parse_filter(args: Mapping[str, str]) -> LogFilter:
    problems: list[dict[str, Any]] = []

    def date(field: str) -> dt.date | None:
        if not args.get(field):
            return None
        try:
            return dt.date.fromisoformat(args[field])
        except ValueError:
            problems.append(_problem(field, args[field], "a date as YYYY-MM-DD"))
            return None

    version = None
    if args.get("version"):
        if args["version"].isdigit() and 1 <= int(args["version"]) < 2**31:
            version = int(args["version"])
        else:
            problems.append(_problem("version", args["version"], "a version number"))
    decision = args.get("decision") or None
    if decision and decision not in DECISIONS:
        problems.append(_problem("decision", decision, f"one of {', '.join(DECISIONS)}"))
    found = LogFilter(
        protocol=args.get("protocol") or None,
        version=version,
        site=args.get("site") or None,
        decision=decision,
        date_from=date("from"),
        date_to=date("to"),
        subject_id=args.get("subject_id") or None,
        cohort=args.get("cohort") or None,
    )
    if problems:
        raise ApiError(400, "the log filter cannot be used", problems)
    return found


def log_query(log: LogFilter) -> Select[tuple[Screening]]:
    query = select(Screening)
    if log.protocol:
        query = query.join(Protocol, Protocol.id == Screening.protocol_id).where(Protocol.code == log.protocol)
    if log.version is not None:
        query = query.join(ProtocolVersion, ProtocolVersion.id == Screening.version_id).where(
            ProtocolVersion.number == log.version
        )
    if log.site is not None:  # an empty site matches nothing: it never means every site
        query = query.where(Screening.site == log.site)
    if log.decision:
        query = query.where(Screening.decision == log.decision)
    if log.date_from:
        query = query.where(Screening.screening_date >= log.date_from)
    if log.date_to:
        query = query.where(Screening.screening_date <= log.date_to)
    if log.subject_id:
        query = query.where(Screening.subject_id == log.subject_id)
    if log.cohort:
        query = query.where(Screening.cohort == log.cohort)
    return query.order_by(Screening.id.desc())


def page(log: LogFilter, number: int, size: int) -> dict[str, Any]:
    query = log_query(log)
    total = db.session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = db.session.execute(query.offset((number - 1) * size).limit(size)).scalars()
    return {"items": [describe(s, full=False) for s in rows], "page": number, "per_page": size, "total": total}


CSV_COLUMNS = [
    "id",
    "created_at",
    "protocol",
    "version",
    "content_hash",
    "subject_id",
    "site",
    "cohort",
    "screening_date",
    "decision",
    "failed",
    "unknown",
    "missing",
    "previous_id",
]


def csv_rows(log: LogFilter) -> Iterator[str]:
    """The log as CSV, streamed a batch of rows at a time so a long log never sits in memory."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for screening in db.session.execute(log_query(log).execution_options(yield_per=500)).scalars():
        result = screening.result
        outcomes = {c["code"]: c["outcome"] for c in result["criteria"]}
        writer.writerow(
            [
                screening.id,
                iso(screening.created_at),
                screening.protocol.code,
                screening.version.number,
                screening.content_hash,
                screening.subject_id,
                screening.site,
                screening.cohort,
                screening.screening_date.isoformat(),
                screening.decision,
                " ".join(code for code, outcome in outcomes.items() if outcome == "fail"),
                " ".join(code for code, outcome in outcomes.items() if outcome == "unknown"),
                " ".join(result["missing"]),
                screening.previous_id or "",
            ]
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
