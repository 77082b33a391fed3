"""Database models: protocols, their versions with dictionary, criteria and test cases, screenings, users.

A version's rows convert to and from the rules core's plain `ProtocolDef`, so
the compiler never sees the database. Rows of a published version are frozen by
database triggers (see the migrations), and refused earlier, with a clear
error, by `guard_published` below.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from rules.coding import Coding
from rules.protocol import Cohort as CohortDef
from rules.protocol import CriterionDef, ProtocolDef, TestCaseDef, ValueSetDef, VariableDef
from service.vocabulary import VersionStatus

DRAFT, PUBLISHED = VersionStatus.DRAFT, VersionStatus.PUBLISHED


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
# db.Model is made at run time from Base; type checkers see Base, which has the same columns and mapping.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def iso(moment: dt.datetime | None) -> str | None:
    """A stored time (UTC, kept naive in the database) as RFC 3339 with its offset, as the API promises."""
    return None if moment is None else moment.replace(tzinfo=dt.UTC).isoformat()


# An active screener always has a site: an empty scope must never read as "every site".
SCREENER_HAS_SITE = "role <> 'screener' OR NOT active OR (site IS NOT NULL AND site <> '')"


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(SCREENER_HAS_SITE, name="ck_users_screener_site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    site: Mapped[str | None] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_at: Mapped[dt.datetime | None]  # set after too many failed sign-ins; an admin unlocks
    # Part of the session's user id: bumped on sign-out and password change, so every session
    # cookie issued before (a copied one included) stops working at once.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"


class Protocol(Model):
    __tablename__ = "protocols"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ProtocolVersion]] = relationship(
        back_populates="protocol", order_by="ProtocolVersion.number", cascade="all, delete-orphan"
    )

    def current(self) -> ProtocolVersion | None:
        """The version screenings use by default: the latest published."""
        published = [v for v in self.versions if v.status == PUBLISHED]
        return published[-1] if published else None


@dataclass(frozen=True)
class VersionRow:
    """A version's identity and state, read as one row: what deciding and storing a screening need of it.

    Not an ORM object: a screening reads its version on every request, and loading, tracking and
    expiring the object cost more than the statement. Its compiled form is found by `content_hash`
    (service/infra/registry.py); `versions.find_version` gives the whole version.
    """

    id: int
    protocol_id: int
    number: int
    status: str
    content_hash: str | None


class ProtocolVersion(Model):
    __tablename__ = "protocol_versions"
    __table_args__ = (UniqueConstraint("protocol_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocols.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=DRAFT)
    title: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str | None] = mapped_column(String(64))
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("protocol_versions.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(80))
    publish_reason: Mapped[str | None] = mapped_column(Text)

    protocol: Mapped[Protocol] = relationship(back_populates="versions")
    based_on: Mapped[ProtocolVersion | None] = relationship(remote_side=[id])
    cohorts: Mapped[list[Cohort]] = relationship(
        back_populates="version", order_by="Cohort.position", cascade="all, delete-orphan"
    )
    variables: Mapped[list[Variable]] = relationship(
        back_populates="version", order_by="Variable.position", cascade="all, delete-orphan"
    )
    criteria: Mapped[list[Criterion]] = relationship(
        back_populates="version", order_by="Criterion.position", cascade="all, delete-orphan"
    )
    test_cases: Mapped[list[TestCase]] = relationship(
        back_populates="version", order_by="TestCase.position", cascade="all, delete-orphan"
    )
    value_sets: Mapped[list[ValueSet]] = relationship(
        back_populates="version", order_by="ValueSet.position", cascade="all, delete-orphan"
    )

    @property
    def is_published(self) -> bool:
        return self.status == PUBLISHED

    def __str__(self) -> str:
        code = self.protocol.code if self.protocol else "?"
        return f"{code} version {self.number} ({self.status})"

    def to_definition(self) -> ProtocolDef:
        return ProtocolDef(
            protocol=self.protocol.code,
            title=self.title,
            version=str(self.number),
            cohorts=tuple(CohortDef(c.code, c.label) for c in self.cohorts),
            variables=tuple(v.to_definition() for v in self.variables),
            criteria=tuple(c.to_definition() for c in self.criteria),
            test_cases=tuple(t.to_definition() for t in self.test_cases),
            source=self.source,
            description=self.description,
            value_sets=tuple(v.to_definition() for v in self.value_sets),
        )

    def fill_from(self, definition: ProtocolDef) -> None:
        """Replace this draft's contents with a protocol definition's."""
        self.title = definition.title
        self.source = definition.source
        self.description = definition.description
        self.cohorts = [Cohort(code=c.code, label=c.label, position=i) for i, c in enumerate(definition.cohorts)]
        self.variables = [Variable.from_definition(v, i) for i, v in enumerate(definition.variables)]
        self.criteria = [Criterion.from_definition(c, i) for i, c in enumerate(definition.criteria)]
        self.test_cases = [TestCase.from_definition(t, i) for i, t in enumerate(definition.test_cases)]
        self.value_sets = [ValueSet.from_definition(v, i) for i, v in enumerate(definition.value_sets)]


class _VersionPart:
    """Columns every row belonging to a version has."""

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)


class Cohort(_VersionPart, Model):
    __tablename__ = "cohorts"
    __table_args__ = (UniqueConstraint("version_id", "code"),)

    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(300))
    version: Mapped[ProtocolVersion] = relationship(back_populates="cohorts")


class Variable(_VersionPart, Model):
    __tablename__ = "variables"
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    name: Mapped[str] = mapped_column(String(80))
    label: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(40))
    units: Mapped[list[str]] = mapped_column(JSON, default=list)
    minimum: Mapped[float | None] = mapped_column(Float)
    maximum: Mapped[float | None] = mapped_column(Float)
    codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    uln: Mapped[bool] = mapped_column(default=False)
    lln: Mapped[bool] = mapped_column(default=False, server_default=false())
    molar_mass: Mapped[str | None] = mapped_column(String(40))
    conversion: Mapped[str | None] = mapped_column(String(40))
    formula: Mapped[str | None] = mapped_column(Text)
    condition: Mapped[str | None] = mapped_column(Text)
    system: Mapped[str | None] = mapped_column(String(40))  # lists: the code system of their entries
    section: Mapped[str] = mapped_column(String(120), default="")
    help: Mapped[str] = mapped_column(Text, default="")
    # [{system, code}]: the codes an EHR records the variable by (FHIR prefill); migration 0010
    coding: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list, server_default="[]")
    version: Mapped[ProtocolVersion] = relationship(back_populates="variables")

    def to_definition(self) -> VariableDef:
        return VariableDef(
            name=self.name,
            label=self.label,
            type=self.type,
            unit=self.unit,
            units=tuple(self.units or ()),
            minimum=self.minimum,
            maximum=self.maximum,
            codes=tuple(self.codes or ()),
            uln=self.uln,
            lln=self.lln,
            molar_mass=self.molar_mass,
            conversion=self.conversion,
            formula=self.formula,
            condition=self.condition,
            system=self.system,
            section=self.section,
            help=self.help,
            coding=tuple(Coding(c["system"], c["code"]) for c in self.coding or ()),
        )

    @classmethod
    def from_definition(cls, v: VariableDef, position: int) -> Variable:
        return cls(
            name=v.name,
            label=v.label,
            type=v.type,
            unit=v.unit,
            units=list(v.units),
            minimum=v.minimum,
            maximum=v.maximum,
            codes=list(v.codes),
            uln=v.uln,
            lln=v.lln,
            molar_mass=v.molar_mass,
            conversion=v.conversion,
            formula=v.formula,
            condition=v.condition,
            system=v.system,
            section=v.section,
            help=v.help,
            coding=[{"system": c.system, "code": c.code} for c in v.coding],
            position=position,
        )


class Criterion(_VersionPart, Model):
    __tablename__ = "criteria"
    __table_args__ = (UniqueConstraint("version_id", "code"),)

    code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    cohorts: Mapped[list[str]] = mapped_column(JSON, default=list)
    section: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(Text)
    notes: Mapped[str] = mapped_column(Text, default="")
    rationale: Mapped[str] = mapped_column(Text, default="", server_default="")
    version: Mapped[ProtocolVersion] = relationship(back_populates="criteria")

    def to_definition(self) -> CriterionDef:
        return CriterionDef(
            code=self.code,
            kind=self.kind,
            text=self.text,
            rule=self.rule,
            cohorts=tuple(self.cohorts or ()),
            section=self.section,
            notes=self.notes,
            rationale=self.rationale or "",
        )

    @classmethod
    def from_definition(cls, c: CriterionDef, position: int) -> Criterion:
        return cls(
            code=c.code,
            kind=c.kind,
            cohorts=list(c.cohorts),
            section=c.section,
            text=c.text,
            rule=c.rule,
            notes=c.notes,
            rationale=c.rationale,
            position=position,
        )


class ValueSet(_VersionPart, Model):
    """A named set of codes of one code system that rules match list entries against (`A10BK*`: a prefix)."""

    __tablename__ = "value_sets"
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    name: Mapped[str] = mapped_column(String(80))
    label: Mapped[str] = mapped_column(String(300))
    system: Mapped[str] = mapped_column(String(40))
    codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    half_life: Mapped[str | None] = mapped_column(String(40))
    help: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[ProtocolVersion] = relationship(back_populates="value_sets")

    def to_definition(self) -> ValueSetDef:
        return ValueSetDef(
            name=self.name,
            label=self.label,
            system=self.system,
            codes=tuple(self.codes or ()),
            half_life=self.half_life or None,
            help=self.help or "",
        )

    @classmethod
    def from_definition(cls, v: ValueSetDef, position: int) -> ValueSet:
        return cls(
            name=v.name,
            label=v.label,
            system=v.system,
            codes=list(v.codes),
            half_life=v.half_life,
            help=v.help,
            position=position,
        )


class TestCase(_VersionPart, Model):
    __tablename__ = "test_cases"
    __table_args__ = (UniqueConstraint("version_id", "name"),)
    __test__ = False  # not a pytest class

    name: Mapped[str] = mapped_column(String(300))
    subject: Mapped[dict[str, Any]] = mapped_column(JSON)
    expect: Mapped[str] = mapped_column(String(20))
    outcomes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    missing: Mapped[list[str] | None] = mapped_column(JSON)
    refused: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    version: Mapped[ProtocolVersion] = relationship(back_populates="test_cases")

    def to_definition(self) -> TestCaseDef:
        return TestCaseDef(
            name=self.name,
            subject=dict(self.subject or {}),
            expect=self.expect,
            outcomes=dict(self.outcomes or {}),
            missing=None if self.missing is None else tuple(self.missing),
            refused=tuple(self.refused or ()),
        )

    @classmethod
    def from_definition(cls, t: TestCaseDef, position: int) -> TestCase:
        subject = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in t.subject.items()}
        return cls(
            name=t.name,
            subject=subject,
            expect=t.expect,
            outcomes=dict(t.outcomes),
            missing=None if t.missing is None else list(t.missing),
            refused=list(t.refused),
            position=position,
        )


class Screening(Model):
    __tablename__ = "screenings"
    __table_args__ = (
        Index("ix_screenings_log", "protocol_id", "created_at"),
        Index("ix_screenings_subject", "protocol_id", "subject_id"),
        Index("ix_screenings_idempotency", "created_by", "idempotency_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocols.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(80))
    site: Mapped[str] = mapped_column(String(80), index=True)
    cohort: Mapped[str] = mapped_column(String(40))
    screening_date: Mapped[dt.date]
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(20), index=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("screenings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # Where prefilled inputs came from ({variable: {resource, date, code, …}}, service/fhir.py): shown with
    # the result, never read by the decision, outside the decision record's hash. Migration 0010.
    sources: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    protocol: Mapped[Protocol] = relationship()
    version: Mapped[ProtocolVersion] = relationship()
    previous: Mapped[Screening | None] = relationship(remote_side=[id])
    record: Mapped[DecisionRecord | None] = relationship(viewonly=True, uselist=False)


class ImpactRun(Model):
    """A replay of the screenings decided by one version under another, with its progress."""

    __tablename__ = "impact_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(ForeignKey("protocols.id"))
    from_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_versions.id"))
    to_content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="running")
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    transitions: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    criteria: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[int] = mapped_column(default=0)  # the last screening id replayed and committed
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    # The lease (service/queue.py): the attempt a worker runs, which process claimed it, and when it last
    # committed a chunk. A takeover starts a new attempt; an older one can no longer commit.
    attempt: Mapped[int] = mapped_column(default=1, server_default="1")
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    worker: Mapped[str | None] = mapped_column(String(300))

    # The cursor doubles as the row's version: a chunk's commit updates the row only where the cursor is
    # still the one it started from, so two processes resuming the same run can never count a chunk twice.
    __mapper_args__ = {"version_id_col": cursor, "version_id_generator": False}  # noqa: RUF012 (declared by SQLAlchemy)

    protocol: Mapped[Protocol] = relationship()
    from_version: Mapped[ProtocolVersion] = relationship(foreign_keys=[from_version_id])
    to_version: Mapped[ProtocolVersion] = relationship(foreign_keys=[to_version_id])


class BatchRun(Model):
    """A CSV batch decided in the background: its rows (once stored, each row's answer), its progress, and state.

    All rows are stored in one transaction with the status `done`, or none are; the attempt number
    lets a retry take over an interrupted run without the old one ever committing on top of it.
    """

    __tablename__ = "batch_runs"
    __table_args__ = (UniqueConstraint("created_by", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by: Mapped[str] = mapped_column(String(80))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    rows: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="running")
    attempt: Mapped[int] = mapped_column(default=1)
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    worker: Mapped[str | None] = mapped_column(String(300))  # host:pid of the process running the attempt
    finished_at: Mapped[dt.datetime | None]


class ImpactChange(Model):
    """One screening whose decision the other version changes, and the criteria that caused it."""

    __tablename__ = "impact_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("impact_runs.id", ondelete="CASCADE"), index=True)
    screening_id: Mapped[int] = mapped_column(ForeignKey("screenings.id"))
    before: Mapped[str] = mapped_column(String(20))
    after: Mapped[str] = mapped_column(String(20))
    causes: Mapped[list[str]] = mapped_column(JSON, default=list)


class DecisionRecord(Model):
    """One link of the hash chain over stored screenings (see service/record.py). Append-only."""

    __tablename__ = "decision_records"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    screening_id: Mapped[int] = mapped_column(ForeignKey("screenings.id"), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(Model):
    """Who changed which protocol data, when, from what to what. Append-only (database triggers)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(20))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None]
    summary: Mapped[str] = mapped_column(String(300))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# Audit rows are written in bulk on the flush's own connection, below the ORM (audit.py).
AUDIT_TABLE = cast(Table, AuditEntry.__table__)


class ImmutableVersionError(Exception):
    """An attempt to change a published version; the database would refuse it too."""


_VERSION_PARTS = (Cohort, Variable, Criterion, TestCase, ValueSet)
_VERSION_RELATIONS = {"cohorts", "variables", "criteria", "test_cases", "value_sets", "protocol", "based_on"}
_ALLOWED_TRANSITIONS = {
    (DRAFT, DRAFT),
    (DRAFT, PUBLISHED),
    (PUBLISHED, PUBLISHED),
}


def _stored_status(version: ProtocolVersion) -> str:
    """The status as the database has it, before this flush's changes."""
    history: Any = inspect(version).attrs.status.history
    return history.deleted[0] if history.deleted else version.status


def _refuse(version: ProtocolVersion, status: str) -> ImmutableVersionError:
    return ImmutableVersionError(f"version {version.number} of {version.protocol.code} is {status} and cannot change")


@event.listens_for(Session, "before_flush")
def guard_published(session: Session, flush_context: Any, instances: Any) -> None:
    """Refuse changes to published versions before the database trigger has to."""
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _VERSION_PARTS):
            version = obj.version if obj.version is not None else session.get(ProtocolVersion, obj.version_id)
            if version is not None and _stored_status(version) != DRAFT:
                raise _refuse(version, _stored_status(version))
        elif isinstance(obj, ProtocolVersion) and obj not in session.new:
            stored = _stored_status(obj)
            if stored == DRAFT:
                continue
            if obj in session.deleted:
                raise _refuse(obj, stored)
            state: Any = inspect(obj)
            changed = {a.key for a in state.attrs if a.key not in _VERSION_RELATIONS and a.history.has_changes()}
            if changed - {"status"} or (stored, obj.status) not in _ALLOWED_TRANSITIONS:
                raise _refuse(obj, stored)
