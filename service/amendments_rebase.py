"""Rebase a stale draft onto the current version: a three-way merge, item by item.

Drafts A and B are both amended from v5; A is published as v6. B cannot be published as it is
(it would bring v5's criteria back), so it is rebased: every criterion, variable, value set, cohort
and test case (matched by code or name) and the version's own texts are merged between the base
(v5), the current version (v6, "theirs") and the draft ("ours"):

- changed on one side only: that side's change is taken (an addition or a removal too);
- changed alike on both sides: taken once;
- changed differently on both: a conflict. The draft keeps its own version of the item and the
  conflict is listed, with the three versions, so the writer decides; nothing is dropped silently.

After the rebase the draft's base is the current version, so its diff and summary of changes are
against what screeners use today, and a conflict shows there as a change of the draft.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rules
from rules.protocol import ProtocolDef
from service.infra.models import ProtocolVersion, db
from service.versions import VersionConflict, VersionRefused, check_codes, find_version

# What is merged item by item, and the attribute that names an item.
PARTS: tuple[tuple[str, str], ...] = (
    ("cohorts", "code"),
    ("variables", "name"),
    ("value_sets", "name"),
    ("criteria", "code"),
    ("test_cases", "name"),
)
TEXTS = ("title", "source", "description")


@dataclass
class Conflict:
    """One item both sides changed differently: the draft keeps `draft`; `current` is what was published."""

    part: str
    key: str
    base: dict[str, Any] | None
    current: dict[str, Any] | None
    draft: dict[str, Any] | None

    def sentence(self) -> str:
        def state(value: dict[str, Any] | None) -> str:
            return "removed it" if value is None else "changed it"

        if self.base is None:
            return f"{self.part} {self.key}: added on both sides, differently; the draft keeps its own"
        return (
            f"{self.part} {self.key}: the published version {state(self.current)} and the draft"
            f" {state(self.draft)} differently; the draft keeps its own"
        )


@dataclass
class MergeResult:
    definition: ProtocolDef
    taken: list[str] = field(default_factory=list)  # "criteria IN-01" taken from the current version
    conflicts: list[Conflict] = field(default_factory=list)


def _plain(item: Any) -> dict[str, Any] | None:
    return None if item is None else dataclasses.asdict(item)


def _merge_items(
    part: str, key_of: str, base: Sequence[Any], current: Sequence[Any], draft: Sequence[Any], out: MergeResult
) -> tuple[Any, ...]:
    def keyed(items: Sequence[Any]) -> dict[str, Any]:
        return {getattr(i, key_of): i for i in items}

    b, c, d = keyed(base), keyed(current), keyed(draft)
    merged: dict[str, Any] = {}
    for key in [*d, *(k for k in c if k not in d), *(k for k in b if k not in d and k not in c)]:
        was, theirs, ours = b.get(key), c.get(key), d.get(key)
        if theirs == ours or was == theirs:
            chosen = ours
        elif was == ours:
            chosen = theirs
            out.taken.append(f"{part} {key}")
        else:
            chosen = ours
            out.conflicts.append(Conflict(part, key, _plain(was), _plain(theirs), _plain(ours)))
        merged[key] = chosen
    return tuple(_ordered(merged, list(d), list(c)))


def _ordered(merged: dict[str, Any], draft_order: list[str], current_order: list[str]) -> list[Any]:
    """The draft's order, with items only the current version has placed after their predecessor there."""
    order = [k for k in draft_order if merged.get(k) is not None]
    for index, key in enumerate(current_order):
        if key in order or merged.get(key) is None:
            continue
        before = next((k for k in reversed(current_order[:index]) if k in order), None)
        order.insert(order.index(before) + 1 if before else 0, key)
    return [merged[k] for k in order]


def merge(base: ProtocolDef, current: ProtocolDef, draft: ProtocolDef) -> MergeResult:
    """The three-way merge of a draft onto the current version (pure: no database)."""
    out = MergeResult(definition=draft)
    changes: dict[str, Any] = {}
    for name in TEXTS:
        was, theirs, ours = getattr(base, name), getattr(current, name), getattr(draft, name)
        if was == ours and theirs != ours:
            changes[name] = theirs
            out.taken.append(name)
        elif was != theirs and was != ours and theirs != ours:
            out.conflicts.append(Conflict("version", name, {name: was}, {name: theirs}, {name: ours}))
    for part, key_of in PARTS:
        changes[part] = _merge_items(
            part, key_of, getattr(base, part), getattr(current, part), getattr(draft, part), out
        )
    out.definition = dataclasses.replace(draft, **changes)
    return out


class RebaseRefused(VersionRefused):
    """The merged draft would not compile (e.g. the published version removed a variable a new rule reads).

    `reasons` are the compiler's sentences, for pages; `problems` say the same against the draft's base.
    """

    def __init__(self, message: str, reasons: list[str], base: int | None = None) -> None:
        super().__init__(message, "based_on", base)
        self.reasons = reasons
        self.problems = [{"field": "based_on", "value": base, "expected": reason} for reason in reasons]


def rebase(draft: ProtocolVersion, check: Callable[[ProtocolDef], Any] = rules.compile_protocol) -> MergeResult:
    """Merge the current version's changes into a draft and make the current version its base.

    Nothing is written when the merged draft does not compile: the writer is told why.
    """
    from rules.errors import EligoError

    if draft.status != "draft":
        raise VersionRefused(
            f"version {draft.number} is {draft.status}; only drafts are rebased", "version", draft.number, "a draft"
        )
    if draft.based_on is None:
        raise VersionRefused(
            f"version {draft.number} was imported from a file, not amended; it has no base to rebase",
            "based_on",
            None,
            "a draft amended from a published version",
        )
    current = find_version(draft.protocol.code)
    if current.id == draft.based_on.id:
        raise VersionConflict(
            f"version {draft.number} is already based on the current version {current.number}",
            "based_on",
            current.number,
            "a base older than the current version",
        )
    result = merge(draft.based_on.to_definition(), current.to_definition(), draft.to_definition())
    try:
        check_codes(result.definition)
        check(result.definition)
    except EligoError as error:
        problems = list(getattr(error, "problems", None) or [str(error)])
        raise RebaseRefused(
            f"version {draft.number} merged with version {current.number} would not compile; nothing was changed",
            problems,
            draft.based_on.number,
        ) from None
    for part, _ in PARTS:  # the old rows go first: the new ones reuse their codes (unique per version)
        getattr(draft, part).clear()
    db.session.flush()
    draft.fill_from(result.definition)
    draft.based_on = current
    db.session.flush()
    return result


def describe(draft: ProtocolVersion, result: MergeResult) -> dict[str, Any]:
    return {
        "version": draft.number,
        "based_on": draft.based_on.number if draft.based_on else None,
        "taken_from_current": result.taken,
        "conflicts": [{**dataclasses.asdict(c), "message": c.sentence()} for c in result.conflicts],
    }
