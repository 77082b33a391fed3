"""Protocol versions: import, amend, publish. Publishing compiles and runs the version's test cases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import bindparam, func, select

import rules
from rules import test_cases
from rules.errors import ProtocolError
from rules.protocol import ProtocolDef
from service.errors import Conflict, DomainError, InvalidInput, NotFound, http_status
from service.infra.engine import draft_engine
from service.infra.models import DRAFT, PUBLISHED, Protocol, ProtocolVersion, VersionRow, db, iso, utcnow
from service.infra.registry import registry


class VersionError(DomainError):
    """A request about versions that cannot be met; the subclass says which kind, and so the HTTP status.

    `field` and `value` name what was asked for (the one problem reported), `status` is kept for the
    pages and admin views that turn it into an `abort()`.
    """

    def __init__(self, message: str, field: str | None = None, value: Any = None, expected: str = "an existing one"):
        super().__init__(message, [{"field": field, "value": value, "expected": expected}] if field else [])
        self.field = field
        self.value = value

    @property
    def status(self) -> int:
        return http_status(self)


class UnknownVersion(VersionError, NotFound):
    """No such protocol, or no such version of it."""


class VersionRefused(VersionError, InvalidInput):
    """The version exists, but its status does not allow this (amending a draft, publishing twice...)."""


class VersionConflict(VersionError, Conflict):
    """The request clashes with the protocol's other versions (a rebase onto the base it already has)."""


@dataclass
class TestFailure:
    name: str
    expected: dict[str, Any]
    got: dict[str, Any]

    __test__ = False  # not a pytest class


class StaleDraft(VersionConflict):
    """A draft amended from a version that is no longer the current one: publishing it would silently
    undo what was published since (drafts A and B from v5; A published as v6; B would bring v5 back)."""

    def __init__(self, draft: ProtocolVersion, since: list[ProtocolVersion]) -> None:
        self.draft = draft
        self.since = since
        base = draft.based_on.number if draft.based_on else None
        published = ", ".join(
            f"version {v.number} (signed by {v.published_by} on {iso(v.published_at)})" for v in since
        )
        current = since[-1].number
        super().__init__(
            f"version {draft.number} was drafted from version {base}, but {published} has been published since;"
            f" rebase the draft onto version {current} so it does not undo that change",
            "based_on",
            base,
        )
        self.problems = [
            {"field": "based_on", "value": base, "expected": "the current version", **v} for v in self.published_since()
        ]

    def published_since(self) -> list[dict[str, Any]]:
        return [
            {"version": v.number, "published_at": iso(v.published_at), "published_by": v.published_by}
            for v in self.since
        ]


class PublishRefused(InvalidInput):
    """A draft whose test cases do not all pass: each failure, with what was expected and what came out."""

    def __init__(self, failures: list[TestFailure]) -> None:
        self.failures = failures
        problems = [{"test_case": f.name, "expected": f.expected, "got": f.got} for f in failures]
        super().__init__(f"not published: {len(failures)} test case(s) failed", problems)


def find_protocol(code: str) -> Protocol:
    protocol = db.session.execute(select(Protocol).filter_by(code=code)).scalar_one_or_none()
    if protocol is None:
        raise UnknownVersion(f"no protocol {code!r}", "protocol", code)
    return protocol


# The version asked for in one statement: that number, or the protocol's latest published one. Every
# screening reads it, so it is built once (its SQL cached by SQLAlchemy) and bound per call.
_VERSIONS, _PROTOCOLS = ProtocolVersion.__table__, Protocol.__table__
_ROW = select(
    _VERSIONS.c.id, _VERSIONS.c.protocol_id, _VERSIONS.c.number, _VERSIONS.c.status, _VERSIONS.c.content_hash
).join(_PROTOCOLS, _PROTOCOLS.c.id == _VERSIONS.c.protocol_id)
_ROW_BY_NUMBER = _ROW.where(_PROTOCOLS.c.code == bindparam("code"), _VERSIONS.c.number == bindparam("number"))
_CURRENT_ROW = (
    _ROW.where(_PROTOCOLS.c.code == bindparam("code"), _VERSIONS.c.status == PUBLISHED)
    .order_by(_VERSIONS.c.number.desc())
    .limit(1)
)


def find_version_row(code: str, number: int | None = None) -> VersionRow:
    """A version by number, or the protocol's current (latest published) version, in one statement;
    only when there is none are the protocol and its versions read, to say why."""
    if number is None:
        row = db.session.execute(_CURRENT_ROW, {"code": code}).first()
    else:
        row = db.session.execute(_ROW_BY_NUMBER, {"code": code, "number": number}).first()
    if row is None:
        _refuse_missing(code, number)
    return VersionRow(*row)


def find_version(code: str, number: int | None = None) -> ProtocolVersion:
    """The whole version (its criteria, cohorts and history), as `find_version_row` finds it."""
    return db.session.get_one(ProtocolVersion, find_version_row(code, number).id)


def _refuse_missing(code: str, number: int | None) -> NoReturn:
    protocol = find_protocol(code)
    if number is None:
        raise VersionRefused(f"{code} has no published version yet", "version", None, "a published version")
    numbers = ", ".join(str(v.number) for v in protocol.versions)
    raise UnknownVersion(f"{code} has no version {number} (versions: {numbers})", "version", number)


def _next_number(protocol: Protocol) -> int:
    highest = db.session.execute(
        select(func.max(ProtocolVersion.number)).where(ProtocolVersion.protocol_id == protocol.id)
    ).scalar()
    return (highest or 0) + 1


# Protocol and cohort codes go into URLs, file names and CSV exports: identifiers only.
CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,39}$")
CODE_EXPECTED = "1-40 letters, digits, '.', '_' or '-', starting with a letter"


def check_codes(definition: ProtocolDef) -> None:
    problems = []
    if not CODE.match(definition.protocol):
        problems.append(f"protocol: code {definition.protocol[:80]!r} is not an identifier ({CODE_EXPECTED})")
    for index, cohort in enumerate(definition.cohorts):
        if not CODE.match(cohort.code):
            problems.append(f"cohorts[{index}]: code {cohort.code[:80]!r} is not an identifier ({CODE_EXPECTED})")
    if problems:
        raise ProtocolError("the protocol file is not valid", problems)


def import_definition(definition: ProtocolDef, created_by: str | None = None) -> ProtocolVersion:
    """Store a protocol file as a new draft version (of a new protocol if its code is new).

    The file is compiled first, so a file that could never be published is refused with its problems.
    """
    check_codes(definition)
    rules.compile_protocol(definition)
    protocol = db.session.execute(select(Protocol).filter_by(code=definition.protocol)).scalar_one_or_none()
    if protocol is None:
        protocol = Protocol(code=definition.protocol, title=definition.title)
        db.session.add(protocol)
        db.session.flush()
    version = ProtocolVersion(protocol=protocol, number=_next_number(protocol), status=DRAFT)
    version.fill_from(definition)
    db.session.add(version)
    db.session.flush()
    return version


def amend(code: str, from_number: int | None = None) -> ProtocolVersion:
    """A new draft copied from a published version (by default the current one)."""
    source = find_version(code, from_number)
    if source.status != PUBLISHED:
        raise VersionRefused(
            f"version {source.number} is {source.status}; amend a published version",
            "from",
            from_number,
            "a published version",
        )
    definition, number = source.to_definition(), _next_number(source.protocol)
    draft = ProtocolVersion(protocol=source.protocol, number=number, status=DRAFT, based_on=source)
    draft.fill_from(definition)
    db.session.add(draft)
    db.session.flush()
    return draft


def run_test_cases(definition: ProtocolDef) -> list[TestFailure]:
    compiled = registry().compile(definition)
    failures = []
    for case in definition.test_cases:
        expected, got = test_cases.expected_of(case), test_cases.result_of(compiled, case, draft_engine())
        if not test_cases.passes(expected, got):
            failures.append(TestFailure(case.name, expected, got))
    return failures


def check_draft(version: ProtocolVersion) -> None:
    """Only drafts are published, and only drafts of the current version: said before anyone is asked to sign."""
    if version.status != DRAFT:
        raise VersionRefused(
            f"version {version.number} is already {version.status}", "version", version.number, "a draft"
        )
    since = published_since(version)
    if since:
        raise StaleDraft(version, since)


def published_since(draft: ProtocolVersion) -> list[ProtocolVersion]:
    """The versions published after the draft's base, when its base is no longer the current version.

    Read from the database, not from the versions this session has loaded, so a publication
    committed by another request meanwhile counts. A draft imported from a file (no base)
    replaces the protocol as a whole and is not compared.
    """
    base = draft.based_on
    if base is None:
        return []
    published = (
        db.session.execute(
            select(ProtocolVersion)
            .where(ProtocolVersion.protocol_id == draft.protocol_id, ProtocolVersion.published_at.is_not(None))
            .order_by(ProtocolVersion.number)
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )
    current = [v for v in published if v.status == PUBLISHED]
    if not current or current[-1].id == base.id:
        return []
    since = [v for v in published if v.number > base.number]
    return since or [current[-1]]  # the base was retired and an older version is current again


@dataclass(frozen=True)
class Signature:
    """Who approved a publication and why: the name, the meaning and, with the time, 21 CFR 11.50's manifestation.

    Made by `service.auth.sign`, which checks the signer's re-entered password; the shipped seed
    protocol alone is published by the system, without one.
    """

    signer: str
    reason: str


SYSTEM_SIGNATURE = Signature("system", "installed from the seed protocol file shipped with Eligo")


def publish(version: ProtocolVersion, signature: Signature) -> ProtocolVersion:
    """Freeze a draft: compile it, run its test cases, record its content hash and the signature.

    The protocol's row is locked first (PostgreSQL), so two drafts of one base published at the
    same moment are taken one after the other and the second is refused as stale.
    """
    db.session.execute(select(Protocol.id).where(Protocol.id == version.protocol_id).with_for_update())
    check_draft(version)
    definition = version.to_definition()
    failures = run_test_cases(definition)
    if failures:
        raise PublishRefused(failures)
    version.status = PUBLISHED
    version.content_hash = definition.content_hash
    version.published_at = utcnow()
    version.published_by = signature.signer
    version.publish_reason = signature.reason
    db.session.flush()
    return version


def describe(version: ProtocolVersion, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "protocol": version.protocol.code,
        "version": version.number,
        "status": version.status,
        "title": version.title,
        "content_hash": version.content_hash,
        "based_on": version.based_on.number if version.based_on else None,
        "created_at": iso(version.created_at),
        "published_at": iso(version.published_at),
        "published_by": version.published_by,
        "publish_reason": version.publish_reason,
    }
    if full:
        definition = version.to_definition().to_dict()
        for key in ("cohorts", "variables", "criteria"):
            data[key] = definition[key]
        data["value_sets"] = definition.get("value_sets", [])
        data["test_cases"] = len(version.test_cases)
    return data
