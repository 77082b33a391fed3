"""The codes a dictionary variable carries, so data from an EHR can be matched to it.

A variable's `coding` lists (system, code) pairs as FHIR writes them: the system is a URI
(`http://loinc.org`, `http://snomed.info/sct`, `http://www.whocc.no/atc`), the code a code of that
system. A code ending in `*` is a prefix and takes its whole hierarchy, as in value sets (ATC
`L04*`: every immunosuppressant). The file writes each as `{system: …, code: …}`; people type
`system|code`, one a line. Codes of the systems rules/lists.py knows are checked for their shape,
enough to catch a code typed in the wrong system; nothing here is a terminology server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rules import lists

# FHIR's canonical URIs of the code systems lists.py knows (WHO ICD-10 is checked as ICD-10-CM's shape).
SYSTEM_URIS = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://www.whocc.no/atc": "ATC",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10-CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
}
_URI = re.compile(r"^(https?://[^\s|]+|urn:(oid|uuid):[^\s|]+)$")
_CODE = re.compile(r"^[^\s|]+$")


@dataclass(frozen=True, order=True)
class Coding:
    """One code of one system; `code` may end in `*` (a prefix)."""

    system: str
    code: str

    def __str__(self) -> str:
        return f"{self.system}|{self.code}"

    def matches(self, system: str | None, code: str | None) -> bool:
        """Whether a code found in a record is this one (or under this prefix). ICD-10 ignores its dot."""
        if system != self.system or not code:
            return False
        found, wanted = _comparable(self.system, code), _comparable(self.system, self.code)
        if wanted.endswith(lists.PREFIX):
            return found.startswith(wanted[:-1])
        return found == wanted


def _comparable(system: str, code: str) -> str:
    short = SYSTEM_URIS.get(system)
    return lists.canonical_code(short, code) if short else code.strip()


def problem(coding: Coding) -> str | None:
    """Why this is not a usable coding, or None."""
    if not _URI.match(coding.system):
        return f"`{coding.system}` is not a code system URI (e.g. http://loinc.org)"
    if not _CODE.match(coding.code):
        return f"`{coding.code}` is not a code: one word, without spaces or `|`"
    short = SYSTEM_URIS.get(coding.system)
    return lists.code_problem(short, coding.code) if short else None


def parse_line(text: str) -> Coding:
    """`system|code` as a Coding; raises ValueError saying what was expected."""
    system, bar, code = text.strip().partition("|")
    if not bar or not system.strip() or not code.strip():
        raise ValueError(f"`{text.strip()}`: write system|code, e.g. http://loinc.org|718-7")
    return Coding(system.strip(), code.strip())


def from_raw(raw: Any, where: str, problems: list[str]) -> tuple[Coding, ...]:
    """A file's `coding:` list (mappings {system, code}, or `system|code` strings); every problem named."""
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list | tuple):
        problems.append(f"{where}: `coding` is a list of {{system, code}}")
        return ()
    found: list[Coding] = []
    for index, item in enumerate(raw):
        at = f"{where}: coding[{index}]"
        if isinstance(item, Mapping):
            extra = set(item) - {"system", "code"}
            if extra or not isinstance(item.get("system"), str) or not isinstance(item.get("code"), str | int):
                problems.append(f"{at}: expected {{system, code}}, got {dict(item)!r}")
                continue
            coding = Coding(item["system"].strip(), str(item["code"]).strip())
        elif isinstance(item, str):
            try:
                coding = parse_line(item)
            except ValueError as error:
                problems.append(f"{at}: {error}")
                continue
        else:
            problems.append(f"{at}: expected {{system, code}}, got {item!r}")
            continue
        reason = problem(coding)
        if reason:
            problems.append(f"{at}: {reason}")
            continue
        found.append(coding)
    return tuple(found)


def as_lines(codings: Iterable[Coding | Mapping[str, str]]) -> str:
    """Codings as people type them, one `system|code` a line."""
    return "\n".join(str(c) if isinstance(c, Coding) else f"{c['system']}|{c['code']}" for c in codings)
