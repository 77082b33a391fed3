"""A protocol version as plain data: read from and written to a YAML or JSON file.

This is the exchange format between the database, the admin, the file on disk
and the compiler. It carries no behaviour beyond loading, checking its shape
and hashing its canonical form: a published version is identified by that hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from rules.coding import Coding
from rules.coding import from_raw as coding_from_raw
from rules.errors import ProtocolError

KINDS = ("inclusion", "exclusion")
REFUSED = "refused"  # a test case whose subject must be refused as input, naming the fields
# A protocol file is a few hundred values a few levels deep. Aliases may repeat a node, but the
# expanded document stays within MAX_NODES ("billion laughs" files are refused before they are
# built), and nesting within MAX_DEPTH (the composer and every later walk are recursive).
MAX_NODES = 100_000
MAX_DEPTH = 40
# Text fields, by kind: codes and names are identifiers, labels one line, texts a few paragraphs.
SHORT, LINE, PARAGRAPHS = 80, 300, 20_000
TEXT_LIMITS = {
    "protocol": 40,
    "title": LINE,
    "version": 40,
    "source": PARAGRAPHS,
    "description": PARAGRAPHS,
    "cohort.code": 40,
    "cohort.label": LINE,
    "variable.name": SHORT,
    "variable.label": LINE,
    "variable.unit": 40,
    "variable.units": 40,
    "variable.codes": SHORT,
    "variable.molar_mass": 40,
    "variable.formula": 2_000,
    "variable.condition": 5_000,
    "variable.conversion": 40,
    "variable.section": 120,
    "variable.help": PARAGRAPHS,
    "variable.coding": LINE,
    "criterion.code": 40,
    "criterion.text": PARAGRAPHS,
    "criterion.rule": 5_000,
    "criterion.cohorts": 40,
    "criterion.section": 200,
    "criterion.notes": PARAGRAPHS,
    "criterion.rationale": PARAGRAPHS,
    "test_case.name": LINE,
}
VARIABLE_TYPES = ("number", "boolean", "code", "date", "list")


@dataclass(frozen=True)
class Cohort:
    code: str
    label: str


@dataclass(frozen=True)
class VariableDef:
    """One variable of the data dictionary, as written in the file.

    Numbers: `unit` (canonical) and `units` (also accepted from labs), `minimum`/`maximum`
    (plausible, in `unit`), `uln`/`lln` (the lab's upper/lower limit of normal is submitted as
    `<name>_uln`/`<name>_lln`), `molar_mass` (e.g. `113.12 g/mol`, for mass <-> molar units) and
    `conversion` (a clinical equation between units, e.g. `hba1c`: NGSP % <-> IFCC mmol/mol).
    """

    name: str
    label: str
    type: str
    unit: str | None = None
    units: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    codes: tuple[str, ...] = ()
    uln: bool = False
    lln: bool = False  # the subject's lab submits its lower limit of normal as `<name>_lln`
    molar_mass: str | None = None
    conversion: str | None = None  # a clinical equation between units (units.ANALYTE_CONVERSIONS)
    formula: str | None = None
    condition: str | None = None  # a yes/no variable defined by a rule: a named sub-condition
    system: str | None = None  # lists: the code system of entries that do not name their own
    section: str = ""
    help: str = ""
    coding: tuple[Coding, ...] = ()  # the codes an EHR records it by (LOINC, SNOMED CT, ATC…): rules/coding.py


@dataclass(frozen=True)
class ValueSetDef:
    """A named set of codes of one code system, kept as data: `any medications in sglt2_inhibitors`.

    A code ending in `*` is a prefix and takes its whole hierarchy (ATC `A10BK*`: every SGLT2
    inhibitor). `half_life` (e.g. `13 h`) lets a rule count a washout in half-lives."""

    name: str
    label: str
    system: str
    codes: tuple[str, ...]
    half_life: str | None = None
    help: str = ""


@dataclass(frozen=True)
class CriterionDef:
    code: str
    kind: str
    text: str
    rule: str
    cohorts: tuple[str, ...] = ()  # empty: every cohort
    section: str = ""
    notes: str = ""
    rationale: str = ""  # why an amendment changed it, for the summary of changes


@dataclass(frozen=True)
class TestCaseDef:
    name: str
    subject: Mapping[str, Any]
    expect: str
    outcomes: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] | None = None
    refused: tuple[str, ...] = ()  # with `expect: refused`: the fields the subject's input is refused on


@dataclass(frozen=True)
class ProtocolDef:
    protocol: str
    title: str
    version: str
    cohorts: tuple[Cohort, ...]
    variables: tuple[VariableDef, ...]
    criteria: tuple[CriterionDef, ...]
    test_cases: tuple[TestCaseDef, ...] = ()
    source: str = ""
    description: str = ""
    value_sets: tuple[ValueSetDef, ...] = ()

    def canonical(self) -> dict[str, Any]:
        """The form that is hashed: the version's content, without its test cases.

        Fields at their default are left out, so adding an optional field to the format later
        does not change the hash of versions published before it existed.
        """
        data = self.to_dict()
        data.pop("test_cases")
        return data

    @cached_property
    def content_hash(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The file form: defaults left out so the file stays readable."""
        data: dict[str, Any] = {
            "protocol": self.protocol,
            "title": self.title,
            "version": self.version,
        }
        if self.source:
            data["source"] = self.source
        if self.description:
            data["description"] = self.description
        data["cohorts"] = [asdict(c) for c in self.cohorts]
        data["variables"] = [_compact(asdict(v), VariableDef) for v in self.variables]
        if self.value_sets:  # only when present, so versions without value sets keep their hash
            data["value_sets"] = [_compact(asdict(v), ValueSetDef) for v in self.value_sets]
        data["criteria"] = [_compact(asdict(c), CriterionDef) for c in self.criteria]
        data["test_cases"] = [_compact(asdict(t), TestCaseDef) for t in self.test_cases]
        return data


def _compact(data: dict[str, Any], cls: type) -> dict[str, Any]:
    defaults = {name: f.default for name, f in cls.__dataclass_fields__.items()}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in defaults and value == defaults[key] and key not in ("name", "code"):
            continue
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, Mapping):
            value = dict(value)
            if not value:
                continue
        out[key] = value
    return out


def _require(data: Mapping[str, Any], key: str, where: str, problems: list[str]) -> Any:
    if key not in data or data[key] in (None, ""):
        problems.append(f"{where}: `{key}` is required")
        return None
    return data[key]


def _known_keys(data: Mapping[str, Any], cls: type, where: str, problems: list[str]) -> None:
    allowed = set(cls.__dataclass_fields__)
    for key in data:
        if key not in allowed:
            problems.append(f"{where}: unknown key `{key}` (allowed: {', '.join(sorted(allowed))})")


def _bound(data: Mapping[str, Any], key: str, where: str, problems: list[str]) -> float | None:
    """A range bound as a float, so a file and its database copy hash alike (0 and 0.0)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}: `{key}` must be a number, not {value!r}")
        return None
    return float(value)


def _tuple(value: Any) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def from_dict(data: Mapping[str, Any]) -> ProtocolDef:
    """Build a protocol from its file form, reporting every shape problem at once."""
    if not isinstance(data, Mapping):
        raise ProtocolError("a protocol file must be a mapping at the top level")
    problems: list[str] = []
    _known_keys(data, ProtocolDef, "protocol", problems)
    cohorts = []
    for index, raw in enumerate(data.get("cohorts") or []):
        where = f"cohorts[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a mapping with `code` and `label`")
            continue
        cohorts.append(Cohort(str(_require(raw, "code", where, problems)), str(raw.get("label", raw.get("code")))))
    variables = []
    for index, raw in enumerate(data.get("variables") or []):
        where = f"variables[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        _known_keys(raw, VariableDef, where, problems)
        name = _require(raw, "name", where, problems)
        kind = raw.get("type", "number")
        if kind not in VARIABLE_TYPES:
            problems.append(f"{where} ({name}): type `{kind}` is not one of {', '.join(VARIABLE_TYPES)}")
        variables.append(
            VariableDef(
                name=str(name),
                label=str(raw.get("label") or name),
                type=str(kind),
                unit=raw.get("unit"),
                units=_tuple(raw.get("units")),
                minimum=_bound(raw, "minimum", where, problems),
                maximum=_bound(raw, "maximum", where, problems),
                codes=tuple(str(c) for c in _tuple(raw.get("codes"))),
                uln=bool(raw.get("uln", False)),
                lln=bool(raw.get("lln", False)),
                molar_mass=raw.get("molar_mass"),
                conversion=raw.get("conversion"),
                formula=raw.get("formula"),
                condition=raw.get("condition"),
                system=raw.get("system"),
                section=str(raw.get("section") or ""),
                help=str(raw.get("help") or ""),
                coding=coding_from_raw(raw.get("coding"), f"{where} ({name})", problems),
            )
        )
    value_sets = _value_sets(data.get("value_sets") or [], problems)
    criteria = []
    for index, raw in enumerate(data.get("criteria") or []):
        where = f"criteria[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        _known_keys(raw, CriterionDef, where, problems)
        kind = raw.get("kind")
        if kind not in KINDS:
            problems.append(f"{where} ({raw.get('code')}): kind `{kind}` is not inclusion or exclusion")
        criteria.append(
            CriterionDef(
                code=str(_require(raw, "code", where, problems)),
                kind=str(kind),
                text=str(_require(raw, "text", where, problems)),
                rule=str(_require(raw, "rule", where, problems)),
                cohorts=tuple(str(c) for c in _tuple(raw.get("cohorts"))),
                section=str(raw.get("section") or ""),
                notes=str(raw.get("notes") or ""),
                rationale=str(raw.get("rationale") or ""),
            )
        )
    test_cases = []
    for index, raw in enumerate(data.get("test_cases") or []):
        where = f"test_cases[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        _known_keys(raw, TestCaseDef, where, problems)
        missing = raw.get("missing")
        test_cases.append(
            TestCaseDef(
                name=str(_require(raw, "name", where, problems)),
                subject=dict(raw.get("subject") or {}),
                expect=str(_require(raw, "expect", where, problems)),
                outcomes=dict(raw.get("outcomes") or {}),
                missing=None if missing is None else tuple(missing),
                refused=tuple(str(f) for f in _tuple(raw.get("refused"))),
            )
        )
        if (test_cases[-1].expect == REFUSED) != bool(test_cases[-1].refused):
            problems.append(f"{where}: `expect: refused` goes with the list of `refused` fields, and only with it")
    for key in ("protocol", "title", "version"):
        _require(data, key, "protocol", problems)
    _check_unique([c.code for c in cohorts], "cohort code", problems)
    _check_unique([v.name for v in variables], "variable name", problems)
    _check_unique([c.code for c in criteria], "criterion code", problems)
    _check_unique([v.name for v in value_sets], "value set name", problems)
    _check_unique([t.name for t in test_cases], "test case name", problems)
    cohort_codes = {c.code for c in cohorts}
    for criterion in criteria:
        for cohort in criterion.cohorts:
            if cohort not in cohort_codes:
                problems.append(f"criterion {criterion.code}: unknown cohort `{cohort}`")
    definition_fields = {
        "protocol": data.get("protocol"),
        "title": data.get("title"),
        "version": data.get("version"),
        "source": data.get("source"),
        "description": data.get("description"),
    }
    _check_sizes(definition_fields, "", "protocol", problems)
    parts = (("cohort", cohorts), ("variable", variables), ("criterion", criteria), ("test_case", test_cases))
    for kind, items in parts:
        for index, item in enumerate(items):
            _check_sizes(asdict(item), kind, f"{kind}[{index}]", problems)
    if problems:
        raise ProtocolError("the protocol file is not valid", problems)
    return ProtocolDef(
        protocol=str(data["protocol"]),
        title=str(data["title"]),
        version=str(data["version"]),
        cohorts=tuple(cohorts),
        variables=tuple(variables),
        criteria=tuple(criteria),
        test_cases=tuple(test_cases),
        source=str(data.get("source") or ""),
        description=str(data.get("description") or ""),
        value_sets=tuple(value_sets),
    )


def _check_sizes(values: Mapping[str, Any], kind: str, where: str, problems: list[str]) -> None:
    """Every text field within its bound (TEXT_LIMITS), lists of codes item by item."""
    for name, value in values.items():
        limit = TEXT_LIMITS.get(f"{kind}.{name}" if kind else name)
        if limit is None or value is None:
            continue
        for item in value if isinstance(value, tuple | list) else (value,):
            size = len(item) if isinstance(item, str) else len(str(item))
            if size > limit:
                problems.append(f"{where}: `{name}` is {size} characters long; at most {limit} are allowed")


def _value_sets(raws: Any, problems: list[str]) -> list[ValueSetDef]:
    """The value sets' shapes; what their systems and codes mean is rules/lists.py's to check."""
    found: list[ValueSetDef] = []
    if not isinstance(raws, list):
        problems.append("value_sets: must be a list")
        return found
    for index, raw in enumerate(raws):
        where = f"value_sets[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a mapping with `name`, `system` and `codes`")
            continue
        _known_keys(raw, ValueSetDef, where, problems)
        name = _require(raw, "name", where, problems)
        codes = _tuple(raw.get("codes"))
        if not codes:
            problems.append(f"{where} ({name}): `codes` needs at least one code")
        half_life = raw.get("half_life")
        found.append(
            ValueSetDef(
                name=str(name),
                label=str(raw.get("label") or name),
                system=str(_require(raw, "system", where, problems)),
                codes=tuple(str(c).strip() for c in codes),
                half_life=None if half_life in (None, "") else str(half_life),
                help=str(raw.get("help") or ""),
            )
        )
    return found


def _check_unique(values: list[str], what: str, problems: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            problems.append(f"duplicate {what} `{value}`")
        seen.add(value)


def _expanded_size(node: yaml.Node, depth: int, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes in the document once every alias is expanded, counted without expanding anything."""
    if depth > MAX_DEPTH:
        raise ProtocolError(f"the protocol file is nested more than {MAX_DEPTH} levels deep")
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise ProtocolError("the protocol file refers to itself (a recursive alias)")
    open_nodes.add(id(node))
    size = 1
    if isinstance(node, yaml.SequenceNode):
        children: list[yaml.Node] = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    for child in children:
        size += _expanded_size(child, depth + 1, sizes, open_nodes)
        if size > MAX_NODES:
            raise ProtocolError(
                f"the protocol file expands to more than {MAX_NODES:,} values (aliases repeating aliases?)"
            )
    open_nodes.discard(id(node))
    sizes[id(node)] = size
    return size


def _safe_load(text: str) -> Any:
    """YAML's safe loader, refusing documents whose expansion or nesting is out of bounds before building them."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, 0, {}, set())
        return loader.construct_document(node)
    except RecursionError:
        raise ProtocolError(f"the protocol file is nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def loads(text: str) -> ProtocolDef:
    """Read a protocol from YAML or JSON text (JSON is YAML)."""
    try:
        data = _safe_load(text)
    except yaml.YAMLError as error:
        raise ProtocolError(f"the protocol file is not valid YAML or JSON: {error}") from None
    return from_dict(data)


def load(path: str | Path) -> ProtocolDef:
    return loads(Path(path).read_text(encoding="utf-8"))


def dumps(protocol: ProtocolDef, fmt: str = "yaml") -> str:
    data = protocol.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
