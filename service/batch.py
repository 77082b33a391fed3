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
from typing import Any

from sqlalchemy import select

from rules.decision import Decision
from service.auth import check_site
from service.errors import ApiError
from service.models import ProtocolVersion, Screening, db
from service.screenings import ScreeningRequest, decide, parse_request, record

ENVELOPE = ("subject_id", "site", "screening_date", "cohort")
HEADER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:[\[(]\s*(.*?)\s*[\])])?\s*$")
MAX_ROWS = 10_000


@dataclass(frozen=True)
class Column:
    name: str
    unit: str | None


def _columns(header: list[str]) -> list[Column]:
    columns, problems = [], []
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
        raise ApiError(422, "the CSV header cannot be used", problems)
    return columns


def read(text: str, protocol: str, version: int | None) -> list[dict[str, Any]]:
    """The CSV as screening requests (JSON API form), one per row."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise ApiError(
            422, "the CSV is empty", [{"field": "body", "value": None, "expected": "a header row"}]
        ) from None
    columns = _columns(header)
    rows = []
    for line, cells in enumerate(reader, 2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            raise ApiError(
                422,
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
            raise ApiError(413, f"a batch holds at most {MAX_ROWS} rows; split the file")
    return rows


@dataclass
class RowResult:
    row: int
    request: ScreeningRequest
    version: ProtocolVersion
    decision: Decision


def decide_rows(rows: Iterable[dict[str, Any]], progress: Callable[[int], None] | None = None) -> list[RowResult]:
    """Decide every row, or raise one error listing each bad row's problems."""
    results: list[RowResult] = []
    problems: list[dict[str, Any]] = []
    for data in rows:
        line = data.pop("row")
        try:
            request = parse_request(data)
            check_site(request.site)
            version, decision = decide(request)
            results.append(RowResult(line, request, version, decision))
        except ApiError as error:
            problems += [{"row": line, **p} for p in error.errors] or [
                {"row": line, "field": None, "expected": error.message}
            ]
        if progress:
            progress(1)
    if problems:
        raise ApiError(
            422, f"{len({p['row'] for p in problems})} row(s) cannot be screened; nothing was stored", problems
        )
    return results


def _row_key(key: str, row: int) -> str:
    return f"{key}#row{row}"


def store(results: list[RowResult], created_by: str | None, key: str | None = None) -> list[Screening]:
    """Record every row in one transaction; with a batch key, each row under `<key>#row<n>`."""
    screenings = []
    for result in results:
        row_key = _row_key(key, result.row) if key else None
        screenings.append(record(result.request, result.version, result.decision, created_by, row_key))
    db.session.commit()
    return screenings


def stored_before(key: str, created_by: str | None) -> list[tuple[int, Screening]]:
    """The rows a batch with this key stored earlier (all of them: a batch is stored whole), by row."""
    found = db.session.execute(
        select(Screening).where(
            Screening.created_by == created_by, Screening.idempotency_key.startswith(f"{key}#row", autoescape=True)
        )
    ).scalars()
    return sorted((int(s.idempotency_key.rsplit("#row", 1)[1]), s) for s in found)


def summary(row: int, screening: Screening, result: Mapping[str, Any]) -> dict[str, Any]:
    """One row's answer, from the decision as stored (`Decision.to_dict()` or the screening's record)."""
    outcomes = [(c["code"], c["outcome"]) for c in result["criteria"]]
    return {
        "row": row,
        "screening_id": screening.id,
        "subject_id": screening.subject_id,
        "decision": result["decision"],
        "failed": [code for code, outcome in outcomes if outcome == "fail"],
        "unknown": [code for code, outcome in outcomes if outcome == "unknown"],
        "missing": result["missing"],
    }
