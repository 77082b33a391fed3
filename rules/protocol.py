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
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
)

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


def _compact(data: dict[str, Any], cls: Any) -> dict[str, Any]:  # cls: a dataclass
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


# -- the file form, declared once: checked here and published as JSON Schema (`eligo protocol-schema`) --


def _listed(value: Any) -> Any:
    """One item may be written without its list (`cohorts: SLE`)."""
    return [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value


def _absent(value: Any) -> Any:
    return None if value == "" else value


# Lists of codes and units: one may be written without its list; each item is bounded (TEXT_LIMITS).
Texts40 = Annotated[list[Annotated[str, StringConstraints(max_length=40)]], BeforeValidator(_listed)]
Texts80 = Annotated[list[Annotated[str, StringConstraints(max_length=80)]], BeforeValidator(_listed)]


Number = Annotated[StrictInt | StrictFloat, Field(description="a number")]


class _File(BaseModel):
    """Exactly the documented keys: an unknown key is a typo that would otherwise be ignored. A number where
    text is meant (`version: 2`) reads as the text it spells."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class CohortFile(_File):
    code: str = Field(max_length=TEXT_LIMITS["cohort.code"])
    label: str | None = Field(None, max_length=TEXT_LIMITS["cohort.label"])


class VariableFile(_File):
    __doc__ = VariableDef.__doc__

    name: str = Field(max_length=TEXT_LIMITS["variable.name"])
    label: str | None = Field(None, max_length=TEXT_LIMITS["variable.label"])
    type: Literal[VARIABLE_TYPES] = "number"  # type: ignore[valid-type]
    unit: str | None = Field(None, max_length=TEXT_LIMITS["variable.unit"])
    units: Texts40 = []
    minimum: Number | None = None
    maximum: Number | None = None
    codes: Texts80 = []
    uln: bool = False
    lln: bool = False
    molar_mass: str | None = Field(None, max_length=TEXT_LIMITS["variable.molar_mass"])
    conversion: str | None = Field(None, max_length=TEXT_LIMITS["variable.conversion"])
    formula: str | None = Field(None, max_length=TEXT_LIMITS["variable.formula"])
    condition: str | None = Field(None, max_length=TEXT_LIMITS["variable.condition"])
    system: str | None = None
    section: str | None = Field(None, max_length=TEXT_LIMITS["variable.section"])
    help: str | None = Field(None, max_length=TEXT_LIMITS["variable.help"])
    coding: list[str | dict[str, str]] = Field(
        [], description="the codes an EHR records it by: `system|code`, or {system, code}; rules/coding.py"
    )


class ValueSetFile(_File):
    __doc__ = ValueSetDef.__doc__

    name: str
    label: str | None = None
    system: str
    codes: Annotated[list[str], BeforeValidator(_listed), Field(min_length=1)]
    half_life: Annotated[str | None, BeforeValidator(_absent)] = None
    help: str | None = None


class CriterionFile(_File):
    code: str = Field(max_length=TEXT_LIMITS["criterion.code"])
    kind: Literal[KINDS]  # type: ignore[valid-type]
    text: str = Field(max_length=TEXT_LIMITS["criterion.text"])
    rule: str = Field(max_length=TEXT_LIMITS["criterion.rule"])
    cohorts: Texts40 = []
    section: str | None = Field(None, max_length=TEXT_LIMITS["criterion.section"])
    notes: str | None = Field(None, max_length=TEXT_LIMITS["criterion.notes"])
    rationale: str | None = Field(None, max_length=TEXT_LIMITS["criterion.rationale"])


class TestCaseFile(_File):
    name: str = Field(max_length=TEXT_LIMITS["test_case.name"])
    subject: dict[str, Any] | None = None
    expect: str
    outcomes: dict[str, str] | None = None
    missing: list[str] | None = None
    refused: Annotated[list[str], BeforeValidator(_listed)] = []


class ProtocolFile(_File):
    """A protocol version as a file (YAML or JSON): its cohorts, data dictionary, value sets, criteria, and
    the test cases that must pass before it is published."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, title="Eligo protocol file")

    protocol: str = Field(max_length=TEXT_LIMITS["protocol"])
    title: str = Field(max_length=TEXT_LIMITS["title"])
    version: str = Field(max_length=TEXT_LIMITS["version"])
    source: str | None = Field(None, max_length=TEXT_LIMITS["source"])
    description: str | None = Field(None, max_length=TEXT_LIMITS["description"])
    cohorts: list[CohortFile] = []
    variables: list[VariableFile] = []
    value_sets: list[ValueSetFile] = []
    criteria: list[CriterionFile] = []
    test_cases: list[TestCaseFile] = []


ITEM_MODELS: dict[str, type[_File]] = {
    "cohorts": CohortFile,
    "variables": VariableFile,
    "value_sets": ValueSetFile,
    "criteria": CriterionFile,
    "test_cases": TestCaseFile,
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of protocol files, for editors to check a YAML file as it is written.

    It describes the canonical form, which `dumps` writes: the loader also takes a number where text
    is meant and a single item where a list is, and the schema nudges towards the canonical form.
    """
    schema = ProtocolFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def json_schema_text() -> str:
    """The schema as published in rules/protocol.schema.json and printed by `eligo protocol-schema`."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def _problem(error: Any, data: Mapping[str, Any]) -> str:
    """One pydantic error in the words of the old report: `criteria[2] (IN-03): `rule` is required`."""
    loc = error["loc"]
    index = next((i for i, part in enumerate(loc) if isinstance(part, int)), None)
    if index is None:
        where, key = "protocol", str(loc[0]) if loc else ""
    else:
        where, key = f"{loc[0]}[{loc[1]}]", next((str(p) for p in loc[2:] if isinstance(p, str)), "")
        item = data.get(loc[0])
        if isinstance(item, list) and isinstance(item[loc[1]], Mapping):
            named = item[loc[1]].get("code", item[loc[1]].get("name"))
            where += f" ({named})" if named not in (None, "") and key not in ("code", "name") else ""
    kind, value = error["type"], error.get("input")
    if kind == "missing" or (value in (None, "") and kind != "extra_forbidden"):
        return f"{where}: `{key}` is required" if key else f"{where}: a value is required"
    if kind == "extra_forbidden":
        model = ITEM_MODELS.get(str(loc[0])) if index is not None else ProtocolFile
        allowed = ", ".join(sorted(model.model_fields)) if model else ""
        return f"{where}: unknown key `{loc[-1]}` (allowed: {allowed})"
    if kind == "literal_error":
        return f"{where}: {key} `{value}` is not one of {error['ctx']['expected']}"
    if kind in ("string_too_long", "too_long") and isinstance(value, str):
        limit = error["ctx"]["max_length"]
        return f"{where}: `{key}` is {len(value)} characters long; at most {limit} are allowed"
    if kind == "too_short" and key == "codes":
        return f"{where}: `codes` needs at least one code"
    if kind in ("model_type", "dict_type") and len(loc) == 2:
        return f"{where}: must be a mapping"
    if kind == "list_type":
        return f"{where}: `{key}` must be a list" if key else f"{loc[0]}: must be a list"
    if kind in ("int_type", "float_type"):
        return f"{where}: `{key}` must be a number, not {value!r}"
    return f"{where}: `{key}` {error['msg'][0].lower()}{error['msg'][1:]}, not {value!r}"


def from_dict(data: Mapping[str, Any]) -> ProtocolDef:
    """Build a protocol from its file form, reporting every problem at once, each with its path."""
    if not isinstance(data, Mapping):
        raise ProtocolError("a protocol file must be a mapping at the top level")
    problems: list[str] = []
    try:
        file = ProtocolFile.model_validate(data)
    except ValidationError as error:
        # Number errors come in pairs (an int, or a float): one sentence is enough.
        problems = list(dict.fromkeys(_problem(e, data) for e in error.errors()))
        raise ProtocolError("the protocol file is not valid", problems) from None
    cohorts = [Cohort(c.code, c.label or c.code) for c in file.cohorts]
    variables = [
        VariableDef(
            name=v.name,
            label=v.label or v.name,
            type=v.type,
            unit=v.unit,
            units=tuple(v.units),
            minimum=None if v.minimum is None else float(v.minimum),  # 0 and 0.0 hash alike
            maximum=None if v.maximum is None else float(v.maximum),
            codes=tuple(v.codes),
            uln=v.uln,
            lln=v.lln,
            molar_mass=v.molar_mass,
            conversion=v.conversion,
            formula=v.formula,
            condition=v.condition,
            system=v.system,
            section=v.section or "",
            help=v.help or "",
            coding=coding_from_raw(v.coding, f"variable[{index}] ({v.name})", problems),
        )
        for index, v in enumerate(file.variables)
    ]
    value_sets = [
        ValueSetDef(
            name=v.name,
            label=v.label or v.name,
            system=v.system,
            codes=tuple(c.strip() for c in v.codes),
            half_life=v.half_life,
            help=v.help or "",
        )
        for v in file.value_sets
    ]
    criteria = [
        CriterionDef(
            code=c.code,
            kind=c.kind,
            text=c.text,
            rule=c.rule,
            cohorts=tuple(c.cohorts),
            section=c.section or "",
            notes=c.notes or "",
            rationale=c.rationale or "",
        )
        for c in file.criteria
    ]
    test_cases = [
        TestCaseDef(
            name=t.name,
            subject=t.subject or {},
            expect=t.expect,
            outcomes=t.outcomes or {},
            missing=None if t.missing is None else tuple(t.missing),
            refused=tuple(t.refused),
        )
        for t in file.test_cases
    ]
    for index, case in enumerate(test_cases):
        if (case.expect == REFUSED) != bool(case.refused):
            problems.append(
                f"test_cases[{index}]: `expect: refused` goes with the list of `refused` fields, and only with it"
            )
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
    if problems:
        raise ProtocolError("the protocol file is not valid", problems)
    return ProtocolDef(
        protocol=file.protocol,
        title=file.title,
        version=file.version,
        cohorts=tuple(cohorts),
        variables=tuple(variables),
        criteria=tuple(criteria),
        test_cases=tuple(test_cases),
        source=file.source or "",
        description=file.description or "",
        value_sets=tuple(value_sets),
    )


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
