"""Histories as data: list entries with a coded concept and dates, value sets, and counting matches.

A list variable (medications, diagnoses, prior therapies) holds entries, each a code of a code
system with optional start and end dates and an optional value (a dose) with its unit. Rules
never walk the list themselves: for each `(list, value set, window)` a rule names, the compiler
asks for three derived fields, computed here before the engine compares them (the
derive-then-compare pattern of formulas):

- `true`: entries certainly in the value set and the window;
- `possible`: those plus entries that may be (a missing date leaves it open);
- `settled`: present (True) only when the two agree.

`count of … >= n` is then true when true >= n, false when possible < n, and unknown between,
which the engine decides from those fields with the same Kleene rules as any other test. An
absent list leaves the three fields absent (unknown); an empty list counts 0 (none).

Windows look back from a reference date and hold an entry when its time overlaps the window:
it started on or before the reference and ended on or after the window's first day, or has not
ended (an entry without an end date is ongoing). A washout in half-lives is the same window,
`N x half-life` long, so a dose ended on the reference day minus 2 days is inside a 5 x 13 h
(2.7 day) washout and one ended 3 days before is outside it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules import units
from rules.errors import SubjectInputError
from rules.formulas import date_ordinal, window_start
from rules.protocol import ValueSetDef

SYSTEMS = ("ICD-10-CM", "SNOMED CT", "ATC", "RxNorm", "LOINC")
_ALIASES = {
    "icd10cm": "ICD-10-CM",
    "icd10": "ICD-10-CM",
    "snomedct": "SNOMED CT",
    "snomed": "SNOMED CT",
    "sct": "SNOMED CT",
    "atc": "ATC",
    "rxnorm": "RxNorm",
    "loinc": "LOINC",
}
# ICD-10-CM never has two letters after its three-character category other than the X placeholder;
# an ATC substance code (A10AE04) does, and would otherwise pass the ICD-10-CM shape without its dot.
_ATC_LIKE = re.compile(r"^[A-Z][0-9]{2}[A-WYZ]{2}")
_CODE_SHAPES = {  # enough to catch a code typed in the wrong system; not a terminology server
    "ICD-10-CM": re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"),
    "SNOMED CT": re.compile(r"^[0-9]{6,18}$"),
    "ATC": re.compile(r"^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$"),
    "RxNorm": re.compile(r"^[0-9]{1,9}$"),
    "LOINC": re.compile(r"^[0-9]{1,7}-[0-9]$"),
}
ENTRY_KEYS = ("code", "system", "label", "start", "end", "value", "unit")
MAX_ENTRIES = 200  # per list and subject: a screening history, not a record extract
PREFIX = "*"


def system_of(name: str | None) -> str | None:
    """The canonical spelling of a code system (`snomed` -> `SNOMED CT`), or None if unknown."""
    if not name:
        return None
    return _ALIASES.get(re.sub(r"[^a-z0-9]", "", name.lower()))


def canonical_code(system: str, code: str) -> str:
    """A code as compared: upper case, trimmed; ICD-10-CM without its dot (E11.9 and E119 are one code)."""
    code = code.strip().upper()
    return code.replace(".", "") if system == "ICD-10-CM" else code


def code_problem(system: str, code: str) -> str | None:
    """Why a code cannot be of this system, or None. A prefix (`A10BK*`) is checked as its stem."""
    stem = code[:-1] if code.endswith(PREFIX) else code
    if not stem or PREFIX in stem:
        return f"`{code}`: a prefix is written with one `*` at the end, e.g. `A10BK*`"
    shape = _CODE_SHAPES[system]
    if system == "ICD-10-CM" and _ATC_LIKE.match(stem.strip().upper().replace(".", "")):
        return f"`{code}` is not an ICD-10-CM code (it has the shape of an ATC code)"
    if code.endswith(PREFIX):
        return None if re.match(r"^[0-9A-Z.\-]+$", stem.upper()) else f"`{code}` is not a {system} code"
    return None if shape.match(stem.strip().upper()) else f"`{code}` is not a {system} code"


@dataclass(frozen=True)
class ValueSet:
    """A checked value set: its system and its codes split into exact codes and prefixes."""

    definition: ValueSetDef
    system: str
    exact: frozenset[str]
    prefixes: tuple[str, ...]
    half_life_days: float | None

    @property
    def name(self) -> str:
        return self.definition.name

    def matches(self, system: str, code: str) -> bool:
        if system != self.system:
            return False
        code = canonical_code(system, code)
        return code in self.exact or any(code.startswith(p) for p in self.prefixes)


def check_value_sets(definitions: Sequence[ValueSetDef], problems: list[str]) -> dict[str, ValueSet]:
    """Every value set checked: a known system, codes of that system, a half-life in time units."""
    found: dict[str, ValueSet] = {}
    for definition in definitions:
        where = f"value set `{definition.name}`"
        if not re.match(r"^[a-z][a-z0-9_]*$", definition.name):
            problems.append(f"{where}: names are lower case letters, digits and _")
        system = system_of(definition.system)
        if system is None:
            problems.append(f"{where}: unknown code system `{definition.system}` (known: {', '.join(SYSTEMS)})")
            continue
        problems.extend(f"{where}: {p}" for c in definition.codes if (p := code_problem(system, c)))
        codes = [canonical_code(system, c) for c in definition.codes]
        half_life = None
        if definition.half_life is not None:
            half_life = _half_life_days(definition.half_life, where, problems)
        found[definition.name] = ValueSet(
            definition,
            system,
            frozenset(c for c in codes if not c.endswith(PREFIX)),
            tuple(c[:-1] for c in codes if c.endswith(PREFIX)),
            half_life,
        )
    return found


def _half_life_days(text: str, where: str, problems: list[str]) -> float | None:
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(.+?)\s*$", text)
    if match is None:
        problems.append(f"{where}: half_life `{text}` must be a duration, e.g. `13 h` or `2 days`")
        return None
    try:
        days = units.conversion(match.group(2), "d")(float(match.group(1)))
    except units.UnitError:
        problems.append(f"{where}: half_life `{text}` must be a duration, e.g. `13 h` or `2 days`")
        return None
    if days <= 0:
        problems.append(f"{where}: half_life must be above zero")
        return None
    return days


def suggest(name: str, value_sets: Mapping[str, ValueSet]) -> str | None:
    matches = difflib.get_close_matches(name, list(value_sets), n=1, cutoff=0.6)
    return matches[0] if matches else None


# -- subject data ---------------------------------------------------------------------------------


def normalize_entries(
    name: str, raw: Any, default_system: str | None
) -> tuple[list[dict[str, Any]], list[SubjectInputError]]:
    """A submitted list as canonical entries (ISO dates as day numbers), and every bad entry named
    by its position (`medications[2].start`)."""
    if isinstance(raw, str):  # a CSV cell, a form field: cannot hold entries
        expected = (
            "a list of entries {code, system, start, end, value, unit}: a list cannot be given as one text"
            " (a CSV cell); send it as a JSON array through the API, or one entry per line in the screening form"
        )
        return [], [SubjectInputError(name, raw, expected)]
    if not isinstance(raw, list | tuple):
        return [], [SubjectInputError(name, raw, "a list of entries {code, system, start, end, value, unit}")]
    if len(raw) > MAX_ENTRIES:
        return [], [SubjectInputError(name, f"{len(raw)} entries", f"at most {MAX_ENTRIES} entries")]
    entries: list[dict[str, Any]] = []
    errors: list[SubjectInputError] = []
    for index, item in enumerate(raw):
        where = f"{name}[{index}]"
        if not isinstance(item, Mapping):
            errors.append(SubjectInputError(where, item, "an entry {code, system, start, end, value, unit}"))
            continue
        for key in item:
            if key not in ENTRY_KEYS:
                errors.append(SubjectInputError(f"{where}.{key}", item[key], f"one of {', '.join(ENTRY_KEYS)}"))
        entry, problems = _entry(where, item, default_system)
        errors.extend(problems)
        if not problems:
            entries.append(entry)
    return entries, errors


def _entry(
    where: str, item: Mapping[str, Any], default_system: str | None
) -> tuple[dict[str, Any], list[SubjectInputError]]:
    errors: list[SubjectInputError] = []
    given_system = item.get("system") or default_system
    system = system_of(given_system if isinstance(given_system, str) else None)
    if system is None:
        errors.append(SubjectInputError(f"{where}.system", item.get("system"), f"one of {', '.join(SYSTEMS)}"))
    code = item.get("code")
    if not isinstance(code, str) or not code.strip():
        errors.append(SubjectInputError(f"{where}.code", code, "a code, e.g. A10BK01"))
    elif system is not None and (code.endswith(PREFIX) or code_problem(system, code)):
        errors.append(SubjectInputError(f"{where}.code", code, f"a {system} code"))
    dates: dict[str, int | None] = {}
    for key in ("start", "end"):
        dates[key] = _date(f"{where}.{key}", item.get(key), errors)
    if dates["start"] is not None and dates["end"] is not None and dates["end"] < dates["start"]:
        errors.append(SubjectInputError(f"{where}.end", _iso(dates["end"]), "a date on or after the start"))
    value = _value(f"{where}.value", item.get("value"), errors)
    unit = item.get("unit")
    if unit is not None and not isinstance(unit, str):
        errors.append(SubjectInputError(f"{where}.unit", unit, "a unit, e.g. mg"))
    label = item.get("label")
    entry: dict[str, Any] = {
        "code": code.strip() if isinstance(code, str) else "",
        "system": system,
        "start": dates["start"],
        "end": dates["end"],
    }
    if value is not None:
        entry["value"] = value
        entry["unit"] = unit or None
    if label:
        entry["label"] = str(label)
    return entry, errors


def _value(where: str, raw: Any, errors: list[SubjectInputError]) -> float | None:
    """An entry's value (a dose, a result) as a number; its unit is kept as submitted."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, bool):
        try:
            return float(raw)
        except (TypeError, ValueError):
            pass
    errors.append(SubjectInputError(where, raw, "a number"))
    return None


def _date(where: str, raw: Any, errors: list[SubjectInputError]) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    day = date_ordinal(raw)
    if day is None:
        errors.append(SubjectInputError(where, raw, "a date as YYYY-MM-DD"))
    return day


def _iso(day: int | None) -> str:
    return dt.date.fromordinal(day).isoformat() if day is not None else ""


# -- counting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """`within amount unit before reference`; `unit` "" with no window (every entry counts)."""

    amount: float = 0.0
    unit: str = ""
    reference: str = "screening_date"

    def start(self, reference: int) -> float:
        if self.unit == "half_life_days":
            return reference - self.amount
        return window_start(reference, self.amount, self.unit)


def in_window(entry: Mapping[str, Any], window: Window, reference: int | None) -> bool | None:
    """Whether the entry's time overlaps the window (None: a missing date leaves it open)."""
    if not window.unit:
        return True
    if reference is None:
        return None
    first = window.start(reference)
    start, end = entry.get("start"), entry.get("end")
    ended_before = end is not None and end < first
    started_after = start is not None and start > reference
    if ended_before or started_after:
        return False
    if start is not None:
        return True  # started by the reference, and not ended before the window
    if end is not None and end <= reference:
        return True  # started before it ended, so by the reference, and ended in the window
    return None


def matches(
    entries: Sequence[Mapping[str, Any]], value_set: ValueSet, window: Window, reference: int | None
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """The entries certainly counted, and those that may be."""
    certain: list[Mapping[str, Any]] = []
    open_: list[Mapping[str, Any]] = []
    for entry in entries:
        if not value_set.matches(entry["system"], entry["code"]):
            continue
        inside = in_window(entry, window, reference)
        if inside is True:
            certain.append(entry)
        elif inside is None:
            open_.append(entry)
    return certain, open_


def count(part: str, entries: Any, value_set: ValueSet, window: Window, reference: int | None) -> int | bool | None:
    """One of the three derived fields of a count (see the module docstring); None leaves it absent."""
    if entries is None or (window.unit and reference is None):
        return None
    certain, open_ = matches(entries, value_set, window, reference)
    if part == "true":
        return len(certain)
    if part == "possible":
        return len(certain) + len(open_)
    return True if not open_ else None


def describe_entry(entry: Mapping[str, Any]) -> str:
    """`dapagliflozin (A10BK01) started 2026-10-01, ended 2026-10-20, 10 mg`."""
    name = f"{entry['label']} ({entry['code']})" if entry.get("label") else f"{entry['system']} {entry['code']}"
    parts = [name]
    if entry.get("start") is not None:
        parts.append(f"started {_iso(entry['start'])}")
    if entry.get("end") is not None:
        parts.append(f"ended {_iso(entry['end'])}")
    elif entry.get("start") is not None:
        parts.append("ongoing")
    if entry.get("value") is not None:
        value = f"{entry['value']:g}"
        parts.append(f"{value} {entry['unit']}" if entry.get("unit") else value)
    return ", ".join(parts)
