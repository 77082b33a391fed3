"""Screen a CSV of subjects: one row each, columns from the data dictionary, units in the header.

    subject_id,site,screening_date,cohort,age [years],anc [/µL],alt [U/L],alt_uln [U/L],hbsag_positive
    S-001,SITE-1,2026-11-02,SLE,40,800,30,40,no

Every row is checked and decided before anything is stored: if any row is bad
the whole batch is refused with every row's problems, so a batch is never half
recorded. Rows are decided through the same path as the JSON API.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select

from rules.dictionary import Subject
from rules.errors import SubjectInputError, SubjectInputErrors
from service import record as decision_record
from service import stored_result
from service.errors import DomainError, InvalidInput, TooLarge
from service.infra.db import RawJSON
from service.infra.engine import engine, replay_engine
from service.infra.models import Screening, VersionRow, db, utcnow
from service.infra.registry import registry
from service.screenings import ScreeningRequest, check_site, input_problems, parse_request, version_for

ENVELOPE = ("subject_id", "site", "screening_date", "cohort")
HEADER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:[\[(]\s*(.*?)\s*[\])])?\s*$")
MAX_ROWS = 10_000


@dataclass(frozen=True)
class Column:
    name: str
    unit: str | None


def _columns(header: list[str]) -> list[Column]:
    columns: list[Column] = []
    problems: list[dict[str, Any]] = []
    for index, title in enumerate(header, 1):
        match = HEADER.match(title)
        if not match:
            problems.append(
                {"field": f"column {index}", "value": title, "expected": "a variable name, optionally with [unit]"}
            )
            continue
        columns.append(Column(match.group(1), match.group(2) or None))
    missing = [name for name in ENVELOPE if name not in {c.name for c in columns}]
    problems += [{"field": "header", "value": None, "expected": f"a `{name}` column"} for name in missing]
    if problems:
        raise InvalidInput("the CSV header cannot be used", problems)
    return columns


def read(text: str, protocol: str, version: int | None) -> list[dict[str, Any]]:
    """The CSV as screening requests (JSON API form), one per row."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("the CSV is empty", [{"field": "body", "value": None, "expected": "a header row"}]) from None
    columns = _columns(header)
    rows = []
    for line, cells in enumerate(reader, 2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            raise InvalidInput(
                f"row {line} has {len(cells)} cells for {len(columns)} columns",
                [{"field": f"row {line}", "value": len(cells), "expected": f"{len(columns)} cells"}],
            )
        request: dict[str, Any] = {"protocol": protocol, "inputs": {}, "row": line}
        if version is not None:
            request["version"] = version
        for column, cell in zip(columns, cells, strict=True):
            cell = cell.strip()
            if column.name in ENVELOPE:
                request[column.name] = cell
            elif cell:
                request["inputs"][column.name] = {"value": cell, "unit": column.unit} if column.unit else cell
        rows.append(request)
        if len(rows) > MAX_ROWS:
            raise TooLarge(f"a batch holds at most {MAX_ROWS} rows; split the file")
    return rows


CHUNK = 500  # rows per round trip to the engine processes, as impact replays do
POOL_FROM = 100  # fewer rows than this are decided by the service's engine process rather than the pool


@dataclass
class RowResult:
    row: int
    request: ScreeningRequest
    version: VersionRow
    decision: dict[str, Any]  # the summary: decision, cohort, content_hash, failed, unknown, missing
    result_canonical: str  # the stored result as canonical JSON (service/stored_result.py): stored as is, and hashed


def _row_problems(line: int, error: DomainError) -> list[dict[str, Any]]:
    return [{"row": line, **p} for p in error.problems] or [{"row": line, "field": None, "expected": error.message}]


def decide_rows(
    rows: Iterable[dict[str, Any]], progress: Callable[[int], None] | None = None, site: str | None = None
) -> list[RowResult]:
    """Decide every row, or raise one error listing each bad row's problems. Rows for another site than
    `site` (the actor's own; None: any) are refused.

    Rows are checked and normalised here, then decided a chunk at a time by the engine pool (one
    process per core), like a replay; each row's stored result is summarised here.
    """
    checked: list[tuple[int, ScreeningRequest, VersionRow]] = []
    problems: list[dict[str, Any]] = []
    versions: dict[tuple[str, int | None], VersionRow | DomainError] = {}
    for data in rows:
        line = data.pop("row")
        try:
            request = parse_request(data)
            check_site(request.site, site)
            found = versions.get((request.protocol, request.version))
            if found is None:
                try:
                    found = version_for(request)
                except DomainError as error:
                    found = error
                versions[(request.protocol, request.version)] = found
            if isinstance(found, DomainError):
                raise found
            checked.append((line, request, found))
        except DomainError as error:
            problems += _row_problems(line, error)
    results: list[RowResult] = []
    for start in range(0, len(checked), CHUNK):
        chunk = checked[start : start + CHUNK]
        by_version: dict[int, list[int]] = {}
        for index, (_, _, version) in enumerate(chunk):
            by_version.setdefault(version.id, []).append(index)
        decided: dict[int, Any] = {}
        for indexes in by_version.values():
            version = chunk[indexes[0]][2]
            subjects = [chunk[i][1].subject() for i in indexes]
            decided.update(zip(indexes, _decide_many(version, subjects), strict=True))
        for index, (line, request, version) in enumerate(chunk):
            outcome = decided[index]
            if isinstance(outcome, SubjectInputErrors):
                problems += [{"row": line, **p} for p in input_problems(outcome)]
            else:
                results.append(RowResult(line, request, version, outcome["summary"], outcome["canonical"]))
        if progress:
            progress(len(chunk))
    if problems:
        problems.sort(key=lambda p: p["row"])
        raise InvalidInput(
            f"{len({p['row'] for p in problems})} row(s) cannot be screened; nothing was stored", problems
        )
    return results


def check_sites(rows: Iterable[dict[str, Any]], site: str | None) -> None:
    """Refuse, in the request, rows for a site the user may not screen for: a background job runs
    without the request's user, so it cannot check this itself."""
    problems = []
    for data in rows:
        try:
            check_site(str(data.get("site") or "").strip(), site)
        except DomainError as error:
            problems += _row_problems(data["row"], error)
    if problems:
        raise InvalidInput(
            f"{len({p['row'] for p in problems})} row(s) cannot be screened; nothing was stored", problems
        )


def _decide_many(version: VersionRow, subjects: list[dict[str, Any]]) -> list[dict[str, Any] | SubjectInputErrors]:
    """Each subject's stored result and summary, or its input errors: normalised here, decided by the
    engine processes in one round trip, summarised here without the whole explanation (it is derived
    when a screening is shown, service/stored_result.py)."""
    compiled = registry().compiled(version)
    # A few rows go to the service's own engine process, already warm; a chunk is worth every core.
    pool = replay_engine(version) if len(subjects) >= POOL_FROM else engine(version)
    decided: list[dict[str, Any] | SubjectInputErrors] = []
    usable: list[tuple[int, Subject]] = []
    for subject in subjects:
        try:
            usable.append((len(decided), compiled.dictionary.normalize(subject)))
            decided.append({})
        except SubjectInputErrors as errors:
            decided.append(errors)
        except SubjectInputError as error:
            decided.append(SubjectInputErrors([error]))
    evaluations = pool.evaluate_many(compiled, [normalized.values for _, normalized in usable])
    for (index, normalized), evaluation in zip(usable, evaluations, strict=True):
        stored = stored_result.summarize(compiled, normalized, evaluation)
        decided[index] = {"summary": _summary(stored), "canonical": stored_result.canonical(stored)}
    return decided


def _summary(stored: Mapping[str, Any]) -> dict[str, Any]:
    outcomes = [(c["code"], c["outcome"]) for c in stored["criteria"]]
    return {
        "decision": stored["decision"],
        "cohort": stored["cohort"],
        "content_hash": stored["content_hash"],
        "failed": [code for code, outcome in outcomes if outcome == "fail"],
        "unknown": [code for code, outcome in outcomes if outcome == "unknown"],
        "missing": list(stored["missing"]),
    }


def _row_key(key: str, row: int) -> str:
    return f"{key}#row{row}"


def store(results: list[RowResult], created_by: str | None, key: str | None = None, commit: bool = True) -> list[int]:
    """Record every row in one transaction, with its decision record; returns the screening ids.

    With a batch key, each row is stored under `<key>#row<n>`. Written with plain inserts: the
    compact results go in as `decide_rows` encoded them (canonical JSON, the very text the record
    hashes, so nothing is encoded twice), and the record is chained in one go.
    """
    if not results:
        return []
    connection = db.session.connection()
    table = cast(Table, Screening.__table__)
    previous = _latest(results)
    now = utcnow()
    rows = []
    for result in results:
        request, version = result.request, result.version
        rows.append(
            {
                "protocol_id": version.protocol_id,
                "version_id": version.id,
                "content_hash": result.decision["content_hash"],
                "subject_id": request.subject_id,
                "site": request.site,
                "cohort": result.decision["cohort"],
                "screening_date": request.screening_date,
                "inputs": request.inputs,
                "decision": result.decision["decision"],
                "result": RawJSON(result.result_canonical),
                "previous_id": previous.get((version.protocol_id, request.site, request.subject_id)),
                "created_at": now,
                "created_by": created_by,
                "idempotency_key": _row_key(key, result.row) if key else None,
            }
        )
    # One statement per wave (SQLAlchemy's insertmanyvalues), the ids back in the rows' order. A subject
    # screened twice in one batch links to its earlier row, whose id is known only once that row is in:
    # each repeat goes in a later wave (screenings are never updated).
    waves: list[list[int]] = []
    times_seen: dict[tuple[int, str, str], int] = {}
    for index, values in enumerate(rows):
        subject = (values["protocol_id"], values["site"], values["subject_id"])
        wave = times_seen[subject] = times_seen.get(subject, -1) + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(index)
    latest: dict[tuple[int, str, str], int] = {}
    statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
    for members in waves:
        for index in members:
            values = rows[index]
            subject = (values["protocol_id"], values["site"], values["subject_id"])
            values["previous_id"] = latest.get(subject, values["previous_id"])
        inserted = connection.execute(statement, [rows[index] for index in members])
        for index, (screening_id,) in zip(members, inserted, strict=True):
            values = rows[index]
            values["id"] = latest[(values["protocol_id"], values["site"], values["subject_id"])] = screening_id
    ids = [values["id"] for values in rows]
    chained = sorted(
        ((values, result.result_canonical) for values, result in zip(rows, results, strict=True)),
        key=lambda pair: pair[0]["id"],
    )
    decision_record.append_many(connection, chained)
    if commit:
        db.session.commit()
    return ids


def _latest(results: list[RowResult]) -> dict[tuple[int, str, str], int]:
    """Each subject's latest screening at its site under its protocol, read a few hundred subjects at a time."""
    wanted = sorted({(r.version.protocol_id, r.request.site, r.request.subject_id) for r in results})
    found: dict[tuple[int, str, str], int] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = db.session.execute(
            select(Screening.protocol_id, Screening.site, Screening.subject_id, func.max(Screening.id))
            .where(
                Screening.protocol_id.in_({p for p, _, _ in part}),
                Screening.subject_id.in_({s for _, _, s in part}),
            )
            .group_by(Screening.protocol_id, Screening.site, Screening.subject_id)
        ).all()
        found.update({(p, site, s): latest for p, site, s, latest in rows})
    return found


def stored_before(key: str, created_by: str | None) -> list[tuple[int, Screening]]:
    """The rows a batch with this key stored earlier (all of them: a batch is stored whole), by row."""
    found = db.session.execute(
        select(Screening).where(
            Screening.created_by == created_by, Screening.idempotency_key.startswith(f"{key}#row", autoescape=True)
        )
    ).scalars()
    return sorted((int((s.idempotency_key or "").rsplit("#row", 1)[1]), s) for s in found)


def summary(row: int, screening: Screening, result: Mapping[str, Any]) -> dict[str, Any]:
    """One row's answer, from the decision as stored (the screening's record)."""
    outcomes = [(c["code"], c["outcome"]) for c in result["criteria"]]
    return answer(row, screening.id, screening.subject_id, _decided(result, outcomes))


def _decided(result: Mapping[str, Any], outcomes: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "decision": result["decision"],
        "failed": [code for code, outcome in outcomes if outcome == "fail"],
        "unknown": [code for code, outcome in outcomes if outcome == "unknown"],
        "missing": result["missing"],
    }


def answer(row: int, screening_id: int, subject_id: str, decided: Mapping[str, Any]) -> dict[str, Any]:
    """One row's answer: the same whether it was just decided or read back from the log."""
    return {
        "row": row,
        "screening_id": screening_id,
        "subject_id": subject_id,
        "decision": decided["decision"],
        "failed": list(decided["failed"]),
        "unknown": list(decided["unknown"]),
        "missing": list(decided["missing"]),
    }
