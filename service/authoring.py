"""Writing protocols in the browser: a new protocol from scratch, a protocol file in or out, order, test runs.

The admin's writer pages call these; they reuse what the API and the CLI use (rules.protocol's
loader and dumper, versions.import_definition, rules.test_cases), so a protocol made or uploaded
in the browser is the same thing as one imported with `eligo import`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

import rules
from rules import test_cases
from rules.errors import ProtocolError, RuleErrors
from rules.protocol import TEXT_LIMITS
from service import versions
from service.infra.engine import engine
from service.infra.models import DRAFT, ImmutableVersionError, Protocol, ProtocolVersion, db
from service.infra.registry import registry

UPLOAD_MAX_BYTES = 2 * 1024 * 1024  # the largest shipped protocol file is ~60 kB


def new_protocol(code: str, title: str, description: str = "", source: str = "") -> ProtocolVersion:
    """A protocol and its first draft version, empty: the writer adds cohorts, dictionary, criteria, test cases."""
    code, title = code.strip(), title.strip()
    problems = []
    if not versions.CODE.match(code):
        problems.append(f"code: {code[:80]!r} is not a code ({versions.CODE_EXPECTED})")
    if not title:
        problems.append("title: a title is required")
    elif len(title) > TEXT_LIMITS["title"]:
        problems.append(f"title: at most {TEXT_LIMITS['title']} characters, not {len(title)}")
    if db.session.execute(select(Protocol.id).filter_by(code=code)).first() is not None:
        problems.append(f"code: protocol {code} exists already; amend it, or upload a file as its new draft")
    if problems:
        raise ProtocolError("the protocol cannot be created", problems)
    protocol = Protocol(code=code, title=title)
    draft = ProtocolVersion(
        protocol=protocol, number=1, status=DRAFT, title=title, description=description, source=source
    )
    db.session.add_all([protocol, draft])
    db.session.flush()
    return draft


def upload(text: str, created_by: str | None = None) -> ProtocolVersion:
    """A protocol file (YAML or JSON) stored as a new draft: of a new protocol if its code is new.

    Every problem is raised at once, each with its path in the file (`criteria[2]`, `test_cases[0].subject.anc`);
    the caller rolls back, so nothing is stored from a file with a problem.
    """
    if len(text.encode("utf-8")) > UPLOAD_MAX_BYTES:
        raise ProtocolError(f"the file is larger than {UPLOAD_MAX_BYTES // 1024 // 1024} MB")
    if not text.strip():
        raise ProtocolError("the file is empty: choose a protocol file (YAML or JSON)")
    definition = rules.loads_protocol(text)
    versions.check_codes(definition)
    try:
        compiled = rules.compile_protocol(definition)
    except (ProtocolError, RuleErrors) as error:
        found = error.problems if isinstance(error, ProtocolError) else error.problems()
        paths = {f"{c.code}: ": f"criteria[{i}] ({c.code}): " for i, c in enumerate(definition.criteria)}
        problems = [
            next((paths[p] + problem[len(p) :] for p in paths if problem.startswith(p)), problem) for problem in found
        ]
        raise ProtocolError("the protocol does not compile", problems) from None
    problems = [
        f"test_cases[{index}] ({case.name}): {problem}"
        for index, case in enumerate(definition.test_cases)
        for problem in test_cases.check(compiled, case)
    ]
    if problems:
        raise ProtocolError("the protocol file's test cases are not valid", problems)
    return versions.import_definition(definition, created_by=created_by)


def download(version: ProtocolVersion, fmt: str = "yaml") -> tuple[str, str]:
    """A version as a protocol file: its name and its text, as `eligo export` writes it."""
    return f"{version.protocol.code}-v{version.number}.{fmt}", rules.dump_protocol(version.to_definition(), fmt)


def move(part: Any, offset: int) -> None:
    """Move a criterion (or any row of a draft) up or down among its siblings: positions are renumbered 0..n-1."""
    version = part.version
    if version.status != DRAFT:
        raise ImmutableVersionError(f"version {version.number} is {version.status}; start an amendment")
    siblings = sorted(getattr(version, type(part).__tablename__), key=lambda p: (p.position, p.id))
    index = siblings.index(part)
    target = max(0, min(len(siblings) - 1, index + offset))
    siblings.insert(target, siblings.pop(index))
    for position, sibling in enumerate(siblings):
        sibling.position = position
    db.session.flush()


def run_tests(version: ProtocolVersion) -> list[test_cases.CaseRun]:
    """Every test case of a version run now, as publishing runs them, passing ones included."""
    return test_cases.run(registry().compiled(version), version.to_definition().test_cases, engine(version))
