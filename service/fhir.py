"""Prefill a screening from a FHIR Bundle: the values the EHR already holds, each with its source.

The bundle is parsed and validated by `fhir.resources` (R4 through its R4B models, which read R4's
Patient, Observation, Condition, MedicationStatement/MedicationRequest and Procedure; R5 through the
main package), never by hand: a bundle that is not valid FHIR is refused with the paths of its first
problems. Resources are matched to dictionary variables by the variables' `coding` (rules/coding.py):

- numbers: the most recent Observation `valueQuantity` within the look-back window (screening date
  back `lookback_days`), its UCUM unit taken by the unit machinery (rules/units.py) as one of the
  variable's accepted units or converted to its canonical one; `referenceRange.high`/`low` become
  the ULN/LLN where the variable has them;
- yes/no: an Observation's coded answer (positive/negative, detected, present), a Condition (yes
  unless refuted, when it is no), a medicine taken (yes; "not taken" is no), a Procedure (done: yes;
  not done: no). A record's absence is never a "no": what the bundle lacks stays empty;
- dates: the latest date such a record gives (an ongoing condition or medicine gives none: the
  screener knows the last dose or evidence, the record does not);
- age and sex (variables coded LOINC 30525-0 and 46098-0): Patient.birthDate in completed years at
  the screening date, and Patient.gender;
- lists: the coded Conditions, medicines and Procedures of the list's code system, as entries.

Nothing is decided here: the result is the screening form's inputs, for the screener to confirm.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import pydantic
from fhir.resources import get_fhir_model_class as r5_model
from fhir.resources.bundle import Bundle as BundleR5
from fhir.resources.R4B import get_fhir_model_class as r4_model
from fhir.resources.R4B.bundle import Bundle as BundleR4

from rules import lists, units
from rules.coding import SYSTEM_URIS, Coding
from rules.compiler import CompiledProtocol
from rules.dictionary import Variable
from rules.errors import EligoError, SubjectInputError, SubjectInputErrors
from rules.relevance import input_sections, relevance

FHIR_VERSIONS: dict[str, tuple[Any, Any]] = {"R4": (BundleR4, r4_model), "R5": (BundleR5, r5_model)}
MAX_PROBLEMS = 10
DEFAULT_LOOKBACK_DAYS = 90  # labs older than a screening period's usual three months are not prefilled
UCUM = "http://unitsofmeasure.org"
AGE, SEX = Coding("http://loinc.org", "30525-0"), Coding("http://loinc.org", "46098-0")
# Coded answers of qualitative results: SNOMED CT positive/detected/present/yes/pregnant, HL7 Y/N,
# and the interpretation codes POS/NEG, DET/ND.
_YES = {"10828004", "260373001", "52101004", "373066001", "77386006", "Y", "POS", "DET", "A"}
_NO = {"260385009", "260415000", "2667000", "373067005", "60001007", "N", "NEG", "ND"}
_WORDS = {"positive": True, "detected": True, "reactive": True, "yes": True, "present": True}
_WORDS |= {"negative": False, "not detected": False, "non-reactive": False, "nonreactive": False, "no": False}
_SKIPPED = {"entered-in-error", "cancelled", "registered", "not-done", "draft", "intended", "unknown"}


class FhirBundleError(EligoError):
    """A bundle that is not valid FHIR, or not one subject's: each problem with its path (pydantic's loc)."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


@dataclass(frozen=True)
class Source:
    """Where a prefilled value came from: the resource, the date it is of, the code that matched, as recorded."""

    resource: str  # "Observation/hgb-1"
    date: str | None
    code: str | None  # "http://loinc.org|718-7", or the Patient element read
    recorded: str  # the value as the record has it: "11.8 g/dL", "positive", "active since 2019-04-02"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prefill:
    """The screening inputs a bundle gives (in the API's form), their sources, and what it lacks."""

    fhir_version: str
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    lacking: list[dict[str, str]] = field(default_factory=list)  # {variable, label, reason}
    notes: list[dict[str, str]] = field(default_factory=list)  # records found but not usable, and why


# -- parsing -----------------------------------------------------------------------------------


def path(loc: Iterable[Any]) -> str:
    """pydantic's loc as a path people read: `entry[0].resource.valueQuantity.value`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "bundle"


def shown(value: Any) -> Any:
    """A refused value as an error may quote it: a scalar as is (long text cut), anything else by its kind."""
    if isinstance(value, str):
        return value[:200]
    return value if isinstance(value, int | float | bool | None) else type(value).__name__


def _problems(error: pydantic.ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": path(item["loc"]), "value": shown(item.get("input")), "expected": item["msg"]}
        for item in error.errors()[:MAX_PROBLEMS]
    ]


def _unknown_types(data: Mapping[str, Any], model_of: Any) -> list[dict[str, Any]]:
    """Entries whose resourceType the FHIR version does not have (the library answers those with a KeyError)."""
    found = []
    entries = data.get("entry")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or "resourceType" not in resource:
            continue  # the models say what is missing
        kind = resource["resourceType"]
        try:
            model_of(kind)
        except (KeyError, ValueError, TypeError, AttributeError):
            found.append(
                {"field": f"entry[{index}].resource.resourceType", "value": kind, "expected": "a FHIR resource type"}
            )
    return found


def parse_bundle(data: Any, version: str | None = None) -> tuple[str, Any]:
    """The bundle as fhir.resources models, and its FHIR version (R4 or R5, tried in that order unless given)."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "Bundle":
        kind = data.get("resourceType") if isinstance(data, Mapping) else type(data).__name__
        raise FhirBundleError(
            "the upload is not a FHIR Bundle", [{"field": "resourceType", "value": kind, "expected": "Bundle"}]
        )
    attempts: dict[str, list[dict[str, Any]]] = {}
    for name in [version] if version else list(FHIR_VERSIONS):
        model, model_of = FHIR_VERSIONS[name]
        problems = _unknown_types(data, model_of)
        if not problems:
            try:
                return name, model.model_validate(dict(data))
            except pydantic.ValidationError as error:
                problems = _problems(error)
            except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
                # fhir.resources trips over some malformed shapes (a contained resource of no known type,
                # nesting beyond reason) before pydantic can say where: refused all the same, never a 500
                problems = [
                    {"field": "bundle", "value": None, "expected": f"FHIR it can read ({type(error).__name__})"}
                ]
        attempts[name] = problems
    best = min(attempts, key=lambda n: len(attempts[n]))
    which = f" (the problems reading it as {best})" if len(attempts) > 1 else ""
    raise FhirBundleError(f"the bundle is not valid FHIR {' or '.join(attempts)}{which}", attempts[best])


# -- reading resources ---------------------------------------------------------------------------


def _day(value: Any) -> dt.date | None:
    """A FHIR date or dateTime as a day; a partial date (2019, 2019-04) is too vague to prefill from."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _codings(concept: Any) -> list[tuple[str | None, str | None]]:
    return [(c.system, c.code) for c in getattr(concept, "coding", None) or []]


def _first_code(concept: Any) -> str | None:
    return next((f"{s}|{c}" for s, c in _codings(concept) if s and c), None)


def _status_code(concept: Any) -> str | None:
    """The code of a status CodeableConcept (Condition's clinical and verification status)."""
    return next((c for _, c in _codings(concept) if c), None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, Decimal | int | float) and not isinstance(value, bool) else None


def _plain(value: float) -> int | float:
    """A whole number without its `.0`, so the form shows 30 U/L as the lab wrote it."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


@dataclass(frozen=True)
class Record:
    """One resource as the mapping reads it: its codes, its day, and what it says."""

    kind: str  # Observation, Condition, Medication, Procedure
    reference: str
    concept: Any  # the CodeableConcept that names it
    day: dt.date | None  # the day it is of (the last day, for a period)
    resource: Any
    ongoing: bool = False  # a condition or medicine with no end: the last day is not known

    def matched(self, codings: Iterable[Coding]) -> Coding | None:
        return next((c for c in codings for s, code in _codings(self.concept) if c.matches(s, code)), None)


def _medication_concept(resource: Any, medications: Mapping[str, Any]) -> Any:
    """The medicine's CodeableConcept: R4's medicationCodeableConcept, R5's medication.concept, or the
    code of a Medication resource of the bundle that either references."""
    concept = getattr(resource, "medicationCodeableConcept", None)
    reference = getattr(resource, "medicationReference", None)
    r5 = getattr(resource, "medication", None)
    if r5 is not None and not isinstance(r5, str):
        concept = concept or getattr(r5, "concept", None)
        reference = reference or getattr(r5, "reference", None)
    if concept is None and reference is not None and reference.reference:
        medication = medications.get(reference.reference)
        concept = getattr(medication, "code", None)
    return concept


def _period_end(period: Any) -> tuple[dt.date | None, bool]:
    """The last day of a period, and whether it is still open."""
    if period is None:
        return None, False
    end = _day(period.end)
    return (end, False) if end else (_day(period.start), True)


def records(bundle: Any) -> tuple[Any | None, list[Record]]:
    """The bundle's Patient (one at most: a bundle is one subject's record) and its other resources as records."""
    resources = [e.resource for e in bundle.entry or [] if e.resource is not None]
    patients = [r for r in resources if r.get_resource_type() == "Patient"]
    if len(patients) > 1:
        raise FhirBundleError(
            "a bundle for prefilling holds one subject's records",
            [{"field": "entry", "value": f"{len(patients)} Patients", "expected": "one Patient"}],
        )
    medications = {f"Medication/{r.id}": r for r in resources if r.get_resource_type() == "Medication" and r.id}
    found = []
    for resource in resources:
        kind = resource.get_resource_type()
        reference = f"{kind}/{resource.id or '?'}"
        status = getattr(resource, "status", None)
        if kind == "Observation":
            effective = resource.effectiveDateTime or resource.effectiveInstant
            day = _day(effective) or _period_end(resource.effectivePeriod)[0] or _day(resource.issued)
            found.append(Record(kind, reference, resource.code, day, resource))
        elif kind == "Condition":
            end = _day(resource.abatementDateTime) or _period_end(getattr(resource, "abatementPeriod", None))[0]
            clinical = _status_code(resource.clinicalStatus)
            ongoing = end is None and clinical in ("active", "recurrence", "relapse")
            start = _day(resource.onsetDateTime) or _period_end(resource.onsetPeriod)[0] or _day(resource.recordedDate)
            found.append(Record(kind, reference, resource.code, end or (None if ongoing else start), resource, ongoing))
        elif kind in ("MedicationStatement", "MedicationRequest", "MedicationAdministration"):
            concept = _medication_concept(resource, medications)
            if kind == "MedicationRequest":
                day, ongoing = _day(resource.authoredOn), False
            else:
                # R5's MedicationAdministration spells it `occurence[x]`
                when = getattr(resource, "effectiveDateTime", None) or getattr(resource, "occurenceDateTime", None)
                day, ongoing = (_day(when), False) if when else _period_end(getattr(resource, "effectivePeriod", None))
                ongoing = ongoing and status in ("active", "recorded", "in-progress", None)
            found.append(Record("Medication", reference, concept, day, resource, ongoing))
        elif kind == "Procedure":
            when = getattr(resource, "performedDateTime", None) or getattr(resource, "occurrenceDateTime", None)
            period = getattr(resource, "performedPeriod", None) or getattr(resource, "occurrencePeriod", None)
            day = _day(when) or _period_end(period)[0]
            found.append(Record(kind, reference, resource.code, day, resource))
    return (patients[0] if patients else None), found


# -- mapping to the dictionary ---------------------------------------------------------------------


def _status(record: Record) -> str | None:
    return getattr(record.resource, "status", None)


def _answer(record: Record) -> bool | None:
    """Yes/no as a record states it, or None when it says neither."""
    resource = record.resource
    if record.kind == "Observation":
        if isinstance(resource.valueBoolean, bool):
            return resource.valueBoolean
        codes = [c for _, c in _codings(resource.valueCodeableConcept)]
        for interpretation in resource.interpretation or []:
            codes += [c for _, c in _codings(interpretation)]
        if any(c in _YES for c in codes):
            return True
        if any(c in _NO for c in codes):
            return False
        text = (resource.valueString or getattr(resource.valueCodeableConcept, "text", None) or "").strip().lower()
        return _WORDS.get(text)
    if record.kind == "Condition":
        verification = _status_code(resource.verificationStatus)
        if verification == "refuted":
            return False
        return True if verification in (None, "confirmed") else None  # provisional, differential: not yet
    if record.kind == "Medication":
        return _status(record) != "not-taken"
    if record.kind == "Procedure":
        return False if _status(record) == "not-done" else True if _status(record) == "completed" else None
    return None


def _usable(record: Record, screening: dt.date) -> bool:
    """Not withdrawn, and not dated after the screening date (a result still to come is no result)."""
    status = _status(record)
    if record.kind == "Condition":
        if _status_code(record.resource.verificationStatus) == "entered-in-error":
            return False
    elif status in _SKIPPED and not (record.kind == "Procedure" and status == "not-done"):
        return False
    return record.day is None or record.day <= screening


def _recorded_quantity(quantity: Any) -> str:
    unit = quantity.unit or quantity.code or ""
    return f"{_number(quantity.value):g} {unit}".strip()


def _unit_for(variable: Variable, ucum: str | None) -> tuple[str | None, units.Conversion | None]:
    """The accepted unit label the record's UCUM unit is (so the form shows the lab's own numbers), or
    None with the conversion to the canonical unit; raises UnitError when it does not convert."""
    d = variable.definition
    if not d.unit:
        if ucum in (None, "", "1", "{INR}", "{ratio}", "{score}"):
            return None, None
        raise units.UnitMismatchError(ucum, "no unit", f"{variable.label} is a plain number")
    if not ucum:
        raise units.UnitMismatchError("no unit", d.unit, "the record gives no unit")
    for label in variable.accepted_units:
        if label == ucum:
            return label, None
    for label in variable.accepted_units:
        try:
            found = units.conversion(ucum, label, d.molar_mass, d.conversion)
        except units.UnitError:
            continue
        if found.proportional and abs(found.scale - 1) < 1e-12:
            return label, None
    return None, units.conversion(ucum, d.unit, d.molar_mass, d.conversion)


def _in_unit(value: float, ucum: str | None, variable: Variable, label: str | None) -> float:
    """A limit of normal in the unit the value is submitted in."""
    d = variable.definition
    target = label or d.unit
    if not target or not ucum or ucum == target:
        return value
    return units.tidy(units.conversion(ucum, target, d.molar_mass, d.conversion)(value))


def _quantity_input(variable: Variable, observation: Any) -> Any:
    """An Observation's quantity (and reference range) as the API's input for the variable."""
    quantity = observation.valueQuantity
    ucum = quantity.code if quantity.system in (None, UCUM) and quantity.code else quantity.unit
    label, convert = _unit_for(variable, ucum)
    value = _number(quantity.value)
    assert value is not None
    if convert is not None:
        value = units.tidy(convert(value))
    given: dict[str, Any] = {"value": _plain(value)}
    if label and label != variable.unit:
        given["unit"] = label
    ranges = [r for r in observation.referenceRange or [] if not r.type or _status_code(r.type) == "normal"]
    for limit, side in (("uln", "high"), ("lln", "low")):
        bound = getattr(ranges[0], side, None) if ranges else None
        if getattr(variable.definition, limit) and bound is not None and _number(bound.value) is not None:
            unit = bound.code if bound.system in (None, UCUM) and bound.code else bound.unit or ucum
            given[limit] = _plain(_in_unit(_number(bound.value), unit, variable, label))  # type: ignore[arg-type]
    return given if len(given) > 1 else given["value"]


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


class _Mapper:
    def __init__(
        self,
        compiled: CompiledProtocol,
        patient: Any,
        found: list[Record],
        screening: dt.date,
        lookback: int,
        cohort: str | None,
    ) -> None:
        self.compiled = compiled
        self.cohort = cohort
        self.patient = patient
        self.records = [r for r in found if _usable(r, screening)]
        self.screening = screening
        self.earliest = screening - dt.timedelta(days=lookback)

    def _matching(self, variable: Variable, kinds: tuple[str, ...]) -> Iterator[tuple[Record, Coding]]:
        for record in self.records:
            if record.kind in kinds and (coding := record.matched(variable.definition.coding)):
                yield record, coding

    @staticmethod
    def _latest(found: list[tuple[Record, Coding]]) -> list[tuple[Record, Coding]]:
        return sorted(found, key=lambda pair: (pair[0].day or dt.date.min, pair[0].reference), reverse=True)

    def _source(self, record: Record, coding: Coding | str, recorded: str) -> Source:
        day = record.day.isoformat() if record.day else None
        return Source(record.reference, day, str(coding), recorded)

    def patient_value(self, variable: Variable) -> tuple[Any, Source] | None:
        codings = variable.definition.coding
        if self.patient is None:
            return None
        reference = f"Patient/{self.patient.id or '?'}"
        if AGE in codings and variable.type == "number" and self.patient.birthDate:
            birth = _day(self.patient.birthDate)
            if birth is None or birth > self.screening:
                return None
            age = _age(birth, self.screening)
            return age, Source(reference, birth.isoformat(), "Patient.birthDate", f"born {birth.isoformat()}")
        if SEX in codings and variable.type == "code" and self.patient.gender:
            code = next((c for c in variable.definition.codes if c.lower() == self.patient.gender), None)
            if code is None:
                return None
            return code, Source(reference, None, "Patient.gender", self.patient.gender)
        return None

    def value(self, variable: Variable, notes: list[dict[str, str]]) -> tuple[Any, Source] | None:
        """The variable's value and source, or None; records that match but cannot be used go to `notes`."""
        from_patient = self.patient_value(variable)
        if from_patient is not None:
            return from_patient
        kind = variable.type
        if kind == "number":
            observations = [
                pair
                for pair in self._matching(variable, ("Observation",))
                if pair[0].resource.valueQuantity is not None and pair[0].resource.valueQuantity.value is not None
            ]
            for record, coding in self._latest(observations):
                if not self._recent(variable, record, notes):
                    continue
                try:
                    given = _quantity_input(variable, record.resource)
                except units.UnitError as error:
                    notes.append(self._note(variable, record, str(error)))
                    continue
                return given, self._source(record, coding, _recorded_quantity(record.resource.valueQuantity))
            return None
        if kind == "boolean":
            for record, coding in self._latest(
                list(self._matching(variable, ("Observation", "Condition", "Medication", "Procedure")))
            ):
                if record.kind == "Observation" and not self._recent(variable, record, notes):
                    continue
                answer = _answer(record)
                if answer is not None:
                    return ("yes" if answer else "no"), self._source(record, coding, self._said(record, answer))
            return None
        if kind == "date":
            for record, coding in self._latest(
                list(self._matching(variable, ("Observation", "Condition", "Medication", "Procedure")))
            ):
                if record.kind != "Observation" and _answer(record) is False:
                    continue  # refuted, not taken, not done: no date of it
                if record.ongoing or record.day is None:
                    notes.append(
                        self._note(variable, record, "ongoing or undated in the record: the last date is not known")
                    )
                    continue
                return record.day.isoformat(), self._source(record, coding, self._said(record, True))
            return None
        if kind == "list":
            return self._entries(variable)
        return None

    def _recent(self, variable: Variable, record: Record, notes: list[dict[str, str]]) -> bool:
        """Whether a result is within the look-back window; one that is not is noted, with why."""
        if record.day is None:
            notes.append(self._note(variable, record, "no full date: a result must say the day it is of"))
        elif record.day < self.earliest:
            notes.append(self._note(variable, record, f"dated before {self.earliest.isoformat()}"))
        return record.day is not None and record.day >= self.earliest

    def checked(self, variable: Variable, got: tuple[Any, Source], notes: list[dict[str, str]]) -> bool:
        """Whether the dictionary takes the value as it would from the form (a plausible number, a known code)."""
        envelope = {"screening_date": self.screening.isoformat()}
        cohorts = [c.code for c in self.compiled.definition.cohorts]
        if cohorts:  # any cohort: it does not change how a value is read
            envelope["cohort"] = self.cohort or cohorts[0]
        try:
            self.compiled.dictionary.normalize({**envelope, variable.name: got[0]})
        except (SubjectInputError, SubjectInputErrors) as error:
            problems = error.errors if isinstance(error, SubjectInputErrors) else [error]
            reason = "; ".join(f"{p.value!r} is not {p.expected}" for p in problems)
            notes.append({"variable": variable.name, "resource": got[1].resource, "reason": reason})
            return False
        return True

    def _entries(self, variable: Variable) -> tuple[Any, Source] | None:
        system = lists.system_of(variable.definition.system)
        uris = {uri for uri, short in SYSTEM_URIS.items() if short == system}
        entries, sources = [], []
        for record in self.records:
            if record.kind == "Observation" or _answer(record) is not True:
                continue
            for uri, code in _codings(record.concept):
                if uri in uris and code:
                    entry = {"code": code, "system": system}
                    start = self._start(record)
                    if start:
                        entry["start"] = start.isoformat()
                    if record.day and not record.ongoing and record.kind != "Observation":
                        entry["end"] = record.day.isoformat()
                    entries.append(entry)
                    sources.append(record.reference)
                    break
        if not entries:
            return None
        entries = entries[: lists.MAX_ENTRIES]
        return entries, Source(
            ", ".join(sources[:5]) + (" …" if len(sources) > 5 else ""), None, system, f"{len(entries)} entries"
        )

    @staticmethod
    def _start(record: Record) -> dt.date | None:
        resource = record.resource
        for name in ("onsetDateTime", "performedDateTime", "occurrenceDateTime", "effectiveDateTime", "authoredOn"):
            day = _day(getattr(resource, name, None))
            if day:
                return day
        for name in ("onsetPeriod", "effectivePeriod", "performedPeriod", "occurrencePeriod"):
            period = getattr(resource, name, None)
            if period is not None and _day(period.start):
                return _day(period.start)
        return None

    @staticmethod
    def _said(record: Record, answer: bool) -> str:
        if record.kind == "Observation":
            concept = record.resource.valueCodeableConcept
            text = getattr(concept, "text", None) or next(
                (c.display for c in getattr(concept, "coding", None) or [] if c.display), None
            )
            return text or record.resource.valueString or ("positive" if answer else "negative")
        name = getattr(record.concept, "text", None) or next(
            (c.display for c in getattr(record.concept, "coding", None) or [] if c.display), record.kind
        )
        status = _status(record) or ""
        if record.kind == "Condition":
            verification = _status_code(record.resource.verificationStatus)
            status = "refuted" if verification == "refuted" else _status_code(record.resource.clinicalStatus) or ""
        return f"{name} ({status})" if status else name

    @staticmethod
    def _note(variable: Variable, record: Record, reason: str) -> dict[str, str]:
        return {"variable": variable.name, "resource": record.reference, "reason": reason}


def prefill(
    compiled: CompiledProtocol,
    data: Any,
    *,
    screening_date: dt.date,
    cohort: str | None = None,
    fhir_version: str | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> Prefill:
    """The inputs a FHIR bundle gives for the variables the cohort's criteria use; raises FhirBundleError."""
    version, bundle = parse_bundle(data, fhir_version)
    patient, found = records(bundle)
    cohorts = {c.code for c in compiled.definition.cohorts}
    mapper = _Mapper(compiled, patient, found, screening_date, lookback_days, cohort)
    scope = relevance(compiled, cohort if cohorts else None)
    result = Prefill(version)
    for _, variables in input_sections(compiled.dictionary):
        for variable in variables:
            if not scope.used(variable.name):
                continue
            coded = bool(variable.definition.coding) or variable.type == "list"
            got = mapper.value(variable, result.notes) if coded else None
            if got is not None and not mapper.checked(variable, got, result.notes):
                got, reason = None, "in the bundle, but not as the dictionary takes it (see the notes)"
            elif got is None:
                reason = "not in the bundle" if coded else "no EHR code in the data dictionary"
            if got is None:
                result.lacking.append({"variable": variable.name, "label": variable.label, "reason": reason})
                continue
            result.values[variable.name], result.sources[variable.name] = got
    return result
