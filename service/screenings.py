"""Screenings: decide a submitted subject, keep the record, replay it, list and export the log."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Select, Table, bindparam, func, select
from sqlalchemy.exc import IntegrityError

from rules.decision import Decision
from rules.errors import SubjectInputError, SubjectInputErrors
from rules.explain import explain
from service import csvsafe, schemas, stored_result
from service import record as decision_record
from service.errors import Forbidden, InvalidInput, NotFound, Unreadable, validation_problems
from service.infra.db import RawJSON
from service.infra.engine import engine
from service.infra.models import (
    PUBLISHED,
    DecisionRecord,
    Protocol,
    ProtocolVersion,
    Screening,
    VersionRow,
    db,
    iso,
    utcnow,
)
from service.infra.registry import registry
from service.versions import VersionError, find_version_row

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


def parse_request(data: Mapping[str, Any] | schemas.ScreeningRequest, today: dt.date | None = None) -> ScreeningRequest:
    """Check a screening request against its declaration (service/schemas.py: the API's body, a CSV row),
    then what its values mean; every problem is reported with its field. A body the API has already
    validated is taken as it is."""
    try:
        checked = data if isinstance(data, schemas.ScreeningRequest) else schemas.ScreeningRequest.model_validate(data)
    except ValidationError as error:
        problems = validation_problems(error, schemas.ScreeningRequest)
        if all(e["type"] == "extra_forbidden" for e in error.errors()):
            raise Unreadable("unknown fields in the request", problems) from None
        raise InvalidInput("the screening request cannot be used", problems) from None
    problems = []
    if not checked.protocol.strip():
        problems.append(_problem("protocol", checked.protocol, "a protocol id, e.g. NCT07193667"))
    if checked.cohort is not None and not checked.cohort.strip():
        problems.append(_problem("cohort", checked.cohort, "the cohort code"))
    latest = (today or dt.date.today()) + dt.timedelta(days=1)
    if not EARLIEST_SCREENING <= checked.screening_date <= latest:
        problems.append(
            _problem(
                "screening_date",
                checked.screening_date.isoformat(),
                f"a date as YYYY-MM-DD, from {EARLIEST_SCREENING.isoformat()} to {latest.isoformat()}",
            )
        )
    for key in ("cohort", "screening_date"):
        if key in checked.inputs:
            problems.append(
                _problem(f"inputs.{key}", checked.inputs[key], f"nothing: give {key} beside inputs, not inside")
            )
    if problems:
        raise InvalidInput("the screening request cannot be used", problems)
    return ScreeningRequest(
        checked.protocol.strip(),
        checked.version,
        checked.subject_id,
        checked.site,
        checked.screening_date,
        (checked.cohort or "").strip(),
        checked.inputs,
    )


def input_problems(error: SubjectInputErrors | SubjectInputError) -> list[dict[str, Any]]:
    errors = error.errors if isinstance(error, SubjectInputErrors) else [error]
    out = []
    for e in errors:
        field = e.field if e.field.split(".")[0] in ("cohort", "screening_date") else f"inputs.{e.field}"
        out.append({**e.as_dict(), "field": field})
    return out


def version_for(request: ScreeningRequest) -> VersionRow:
    """The published version deciding a request; find_version_row's errors in the API's words."""
    try:
        version = find_version_row(request.protocol, request.version)
    except VersionError as error:
        kind = NotFound if error.status == 404 else InvalidInput
        raise kind(error.message, [_problem(error.field or "protocol", error.value, "an existing one")]) from None
    if version.status != PUBLISHED:
        raise InvalidInput(
            f"version {version.number} is {version.status}; screenings are decided by published versions",
            [_problem("version", version.number, "a published version")],
        )
    return version


def decide(request: ScreeningRequest) -> tuple[VersionRow, Decision, dict[str, Any]]:
    """Decide a request: its version, the whole explanation (for the answer) and the compact result
    that is stored (service/stored_result.py), both from the one engine evaluation."""
    version = version_for(request)
    compiled = registry().compiled(version)
    try:
        subject = compiled.dictionary.normalize(request.subject())
    except (SubjectInputErrors, SubjectInputError) as error:
        raise InvalidInput("the subject's data cannot be used as submitted", input_problems(error)) from None
    evaluation = engine().evaluate(compiled, subject.values)
    decision = explain(compiled, subject, evaluation)
    return version, decision, stored_result.compact(decision, evaluation)


# The session's info key under which a page that prefilled the form (service/fhir_pages.py) leaves each
# value's source, for the screening stored next in that session's transaction.
PENDING_SOURCES = "eligo.fhir_sources"


_SCREENINGS = cast(Table, Screening.__table__)
# The subject's latest screening at this site under this protocol, read inside the insert: on SQLite
# under the writer's lock, so two workers can never both link to the same earlier screening.
_PREVIOUS = (
    select(func.max(_SCREENINGS.c.id))
    .where(
        _SCREENINGS.c.protocol_id == bindparam("previous_protocol_id"),
        _SCREENINGS.c.site == bindparam("previous_site"),  # subject ids are pseudonyms chosen per site
        _SCREENINGS.c.subject_id == bindparam("previous_subject_id"),
    )
    .scalar_subquery()
)
# Built once, bound per request: building the statement cost more than running it.
_INSERT = (
    _SCREENINGS.insert()
    .values(previous_id=_PREVIOUS)
    .returning(_SCREENINGS.c.id, _SCREENINGS.c.previous_id, decision_record.HEAD_SEQ, decision_record.HEAD_HASH)
)


@dataclass(frozen=True)
class Written:
    """A screening as `record` wrote it: its column values (its ids included) and its place in the chain."""

    values: dict[str, Any]
    link: decision_record.Link


def record(
    request: ScreeningRequest,
    version: VersionRow,
    stored: Mapping[str, Any],
    created_by: str | None,
    idempotency_key: str | None = None,
) -> Written:
    """Write the screening, linked to the subject's previous one at this site under this protocol, and
    chain its record: two inserts (the first also reads the chain's head), in the caller's transaction.

    The stored result is encoded once (its canonical JSON is both the column's text and what the
    record hashes). On SQLite the insert takes the writer's lock, which every other writer waits for
    until the commit: what does not need the new row's id (the encodings, the record's text) is
    worked out before it, and the screening's answer after the commit (`written`).
    """
    text = stored_result.canonical(stored)
    values: dict[str, Any] = {
        "protocol_id": version.protocol_id,
        "version_id": version.id,
        "content_hash": stored["content_hash"],
        "subject_id": request.subject_id,
        "site": request.site,
        "cohort": stored["cohort"],
        "screening_date": request.screening_date,
        "inputs": request.inputs,
        "decision": stored["decision"],
        "result": RawJSON(text),
        "created_at": utcnow(),
        "created_by": created_by,
        "idempotency_key": idempotency_key,
    }
    pending = db.session.info.get(PENDING_SOURCES)
    if pending:  # written in the same insert: never a screening without the sources it was prefilled with
        values["sources"] = {name: source for name, source in pending.items() if name in request.inputs}
    record_text = decision_record.unsealed(values, result_text=text)
    connection = db.session.connection()
    previous = {
        "previous_protocol_id": version.protocol_id,
        "previous_site": request.site,
        "previous_subject_id": request.subject_id,
    }
    decision_record.take_turn(connection)
    values["id"], values["previous_id"], *head = connection.execute(_INSERT, {**values, **previous}).one()
    return Written(values, decision_record.append(connection, values, record_text, (head[0], head[1])))


def written(
    done: Written, request: ScreeningRequest, version: VersionRow, decision: Decision, stored: Mapping[str, Any]
) -> Screening:
    """The screening `record` wrote, not attached to the session, with its explanation and answer already
    built: answering it reads nothing back."""
    values, link = done.values, done.link
    screening = Screening(**{**values, "result": stored})
    screening.record = DecisionRecord(
        seq=link.seq, screening_id=values["id"], prev_hash=link.prev_hash, record_hash=link.record_hash
    )
    setattr(screening, _EXPLANATION, decision.to_dict())
    # The protocol is the one the request named (found by that exact code).
    setattr(screening, _ANSWER, _description(screening, request.protocol, version.number, full=True))
    return screening


def check_site(site: str, allowed: str | None) -> None:
    """Refuse acting for another site than the actor's own (`allowed`; None: every site)."""
    if allowed is not None and site != allowed:
        raise Forbidden(f"you screen for site {allowed}", [_problem("site", site, allowed)])


def screen(
    data: Mapping[str, Any] | schemas.ScreeningRequest,
    created_by: str | None,
    idempotency_key: str | None = None,
    *,
    site: str | None,
) -> tuple[Screening, bool]:
    """Decide and store a screening for `created_by`, who may screen at `site` only (None: any site); with
    a key already used by this user, the screening stored then.

    Returns the screening and whether it was stored by this call. A client that lost the answer
    retries with the same key and can never store the subject twice, even when both calls race.
    """
    request = parse_request(data)
    check_site(request.site, site)
    if idempotency_key and (earlier := _by_key(created_by, idempotency_key)):
        return _same_request(earlier, request, idempotency_key), False
    version, decision, stored = decide(request)
    try:
        done = record(request, version, stored, created_by, idempotency_key)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if not idempotency_key or not (earlier := _by_key(created_by, idempotency_key)):
            raise
        return _same_request(earlier, request, idempotency_key), False
    return written(done, request, version, decision, stored), True


class KeyReused(InvalidInput):
    """An idempotency key already stored a different screening."""


def _by_key(created_by: str | None, key: str) -> Screening | None:
    """The screening this user stored with this key: its id looked up first (the index alone answers),
    the row loaded only when there is one, as on a retry."""
    found = db.session.execute(
        select(Screening.id).where(Screening.created_by == created_by, Screening.idempotency_key == key)
    ).scalar_one_or_none()
    return None if found is None else db.session.get(Screening, found)


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
            "this Idempotency-Key was used for a different screening",
            [_problem("Idempotency-Key", key, f"a new key, or the same request as screening {earlier.id}")],
        )
    return earlier


def replay(screening: Screening) -> tuple[bool, dict[str, Any]]:
    """Decide a stored screening again under its own version: must give the same record.

    A compact result is compared as stored (the engine's facts, rules and outcomes); an older, whole
    one as the whole explanation. The answer carries the whole explanation either way."""
    compiled = registry().compiled(screening.version)
    subject = {
        **screening.inputs,
        "cohort": screening.cohort,
        "screening_date": screening.screening_date.isoformat(),
    }
    normalized = compiled.dictionary.normalize(subject)
    evaluation = engine().evaluate(compiled, normalized.values)
    decision = explain(compiled, normalized, evaluation)
    again = json.loads(json.dumps(decision.to_dict()))
    if stored_result.is_compact(screening.result):
        same = json.loads(stored_result.canonical(stored_result.compact(decision, evaluation))) == screening.result
    else:
        same = again == screening.result
    return same and compiled.content_hash == screening.content_hash, again


_EXPLANATION = "_eligo_explanation"  # a screening object's explanation, once derived
_ANSWER = "_eligo_answer"  # a just-recorded screening's answer


def full_result(screening: Screening) -> dict[str, Any]:
    """A screening's whole explanation: stored whole (older screenings) or derived from its compact
    result, once per object (service/stored_result.py)."""
    explained = getattr(screening, _EXPLANATION, None)
    if explained is None:
        result = screening.result
        if stored_result.is_compact(result):
            explained = stored_result.expand(registry().compiled(screening.version), result, screening.inputs)
        else:
            explained = result
        setattr(screening, _EXPLANATION, explained)
    return explained


def describe(screening: Screening, full: bool = True) -> dict[str, Any]:
    """A screening as the API shows it; a screening just recorded answers what `record` built."""
    answer = getattr(screening, _ANSWER, None)
    if full and answer is not None:
        return answer
    return _description(screening, screening.protocol.code, screening.version.number, full)


def _description(screening: Screening, protocol: str, version: int, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": screening.id,
        "protocol": protocol,
        "version": version,
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
        data["result"] = full_result(screening)
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


def log_filter(query: schemas.LogFilters) -> LogFilter:
    return LogFilter(
        protocol=query.protocol,
        version=query.version,
        site=query.site,
        decision=query.decision,
        date_from=query.from_,
        date_to=query.to,
        subject_id=query.subject_id,
        cohort=query.cohort,
    )


def parse_filter(args: Mapping[str, str]) -> LogFilter:
    """The log's filters from query parameters (the first value of each), as the API declares them."""
    try:
        query = schemas.LogFilters.model_validate({key: args[key] for key in args})
    except ValidationError as error:
        raise Unreadable("the log filter cannot be used", validation_problems(error, schemas.LogFilters)) from None
    return log_filter(query)


def log_query(log: LogFilter) -> Select[Any]:
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
