"""CDISC SDTM exports: the trial inclusion/exclusion criteria (TI) and the criteria not met (IE).

Variable names, lengths and the meaning of IEORRES follow the SDTM
Implementation Guide: TI lists every criterion of a version; IE has one record
per subject and criterion *not met* (an inclusion that failed: N; an exclusion
that applies: Y). Criteria left unknown are not "not met" and are not reported.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from service import csvsafe, screenings
from service.infra.models import Protocol, ProtocolVersion, Screening, db

TI_COLUMNS = ["STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT", "IESCAT", "TIRL", "TIVERS"]
IE_COLUMNS = [
    "STUDYID",
    "DOMAIN",
    "USUBJID",
    "IESEQ",
    "IETESTCD",
    "IETEST",
    "IECAT",
    "IESCAT",
    "IEORRES",
    "IESTRESC",
    "VISIT",
    "IEDTC",
]


def testcd_codes(codes: list[str]) -> dict[str, str]:
    """IETESTCD for each criterion code: at most 8 letters and digits, starting with a letter, unique."""
    found: dict[str, str] = {}
    used: set[str] = set()
    for code in codes:
        base = re.sub(r"[^A-Z0-9]", "", code.upper()) or "CRIT"
        if not base[0].isalpha():
            base = "C" + base
        candidate, n = base[:8], 1
        while candidate in used:
            suffix = str(n)
            candidate, n = base[: 8 - len(suffix)] + suffix, n + 1
        used.add(candidate)
        found[code] = candidate
    return found


def _test(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:199] + "…"


def _category(kind: str) -> str:
    return "INCLUSION" if kind == "inclusion" else "EXCLUSION"


def _subcategory(cohorts: list[str]) -> str:
    return " ".join(cohorts)


def ti_rows(version: ProtocolVersion) -> list[dict[str, Any]]:
    codes = testcd_codes([c.code for c in version.criteria])
    return [
        {
            "STUDYID": version.protocol.code,
            "DOMAIN": "TI",
            "IETESTCD": codes[c.code],
            "IETEST": _test(c.text),
            "IECAT": _category(c.kind),
            "IESCAT": _subcategory(c.cohorts),
            "TIRL": " ".join(c.rule.split()),
            "TIVERS": str(version.number),
        }
        for c in version.criteria
    ]


def ie_rows(
    protocol: Protocol, version: ProtocolVersion | None = None, site: str | None = None
) -> Iterator[dict[str, Any]]:
    """IE records from the latest screening of each subject (of one version, if given)."""
    query = select(Screening).where(Screening.protocol_id == protocol.id).order_by(Screening.subject_id, Screening.id)
    if version is not None:
        query = query.where(Screening.version_id == version.id)
    if site:
        query = query.where(Screening.site == site)
    latest: dict[str, Screening] = {}
    for screening in db.session.execute(query).scalars():
        latest[screening.subject_id] = screening
    codes_by_version: dict[int, dict[str, str]] = {}
    for subject_id in sorted(latest):
        screening = latest[subject_id]
        if screening.version_id not in codes_by_version:
            codes_by_version[screening.version_id] = testcd_codes([c.code for c in screening.version.criteria])
        codes = codes_by_version[screening.version_id]
        sequence = 0
        for criterion in screenings.full_result(screening)["criteria"]:
            if criterion["outcome"] != "fail":
                continue
            sequence += 1
            answer = "N" if criterion["kind"] == "inclusion" else "Y"
            yield {
                "STUDYID": protocol.code,
                "DOMAIN": "IE",
                "USUBJID": f"{protocol.code}-{screening.site}-{subject_id}",
                "IESEQ": sequence,
                "IETESTCD": codes.get(criterion["code"], criterion["code"]),
                "IETEST": _test(criterion["text"]),
                "IECAT": _category(criterion["kind"]),
                "IESCAT": _subcategory(criterion["cohorts"]),
                "IEORRES": answer,
                "IESTRESC": answer,
                "VISIT": "SCREENING",
                "IEDTC": screening.screening_date.isoformat(),
            }


def to_csv(columns: list[str], rows) -> str:
    buffer = io.StringIO()
    writer = csvsafe.dict_writer(buffer, columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
