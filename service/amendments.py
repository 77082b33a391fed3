"""What an amendment changes, for people: the diff as Markdown, and the summary of changes table."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from rules.diff import ProtocolDiff, diff
from service import csvsafe
from service.impact import latest_done
from service.infra.models import ProtocolVersion
from service.versions import VersionRefused, find_version


def versions_to_compare(code: str, number: int, from_number: int | None) -> tuple[ProtocolVersion, ProtocolVersion]:
    """A version and the one it is compared with: the given one, else the one it was amended from."""
    after = find_version(code, number)
    if from_number is None:
        if after.based_on is None:
            raise VersionRefused(
                f"version {number} was not amended from another; say which with `from`",
                "from",
                None,
                "a version number",
            )
        return after.based_on, after
    return find_version(code, from_number), after


def protocol_diff(before: ProtocolVersion, after: ProtocolVersion) -> ProtocolDiff:
    return diff(before.to_definition(), after.to_definition())


def _escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _change_text(change: Any) -> str:
    if change.kind in ("text", "notes"):
        parts = []
        for run in change.before:
            if run["op"] == "delete":
                parts.append(f"~~{run['text']}~~")
            elif run["op"] == "insert":
                parts.append(f"**{run['text']}**")
            else:
                parts.append(run["text"])
        return f"{change.kind}: " + " ".join(parts)
    return change.text


def markdown(result: ProtocolDiff) -> str:
    lines = [f"# {result.protocol}: version {result.before} → version {result.after}", ""]
    if result.empty:
        return "\n".join([*lines, "No differences."]) + "\n"
    for title, items in (
        ("Criteria", result.criteria),
        ("Data dictionary", result.variables),
        ("Cohorts", result.cohorts),
        ("Value sets", result.value_sets),
    ):
        if not items:
            continue
        lines += [f"## {title}", ""]
        for item in items:
            lines.append(f"- **{item.key}** ({item.status})")
            if item.status == "changed":
                lines += [f"  - {_change_text(change)}" for change in item.changes]
        lines.append("")
    return "\n".join(lines)


@dataclass
class SummaryRow:
    criterion: str
    change: str
    before: str
    after: str
    rationale: str
    affected: int | None


def summary(before: ProtocolVersion, after: ProtocolVersion) -> tuple[list[SummaryRow], dict[str, Any] | None]:
    """The summary of changes table, with subjects affected from the latest impact replay, if one was run."""
    result = protocol_diff(before, after)
    run = latest_done(before, after)
    old = {c.code: c for c in before.criteria}
    new = {c.code: c for c in after.criteria}
    rows = []
    for item in result.criteria:
        was, now = old.get(item.key), new.get(item.key)
        change = "; ".join(c.text for c in item.changes if c.kind not in ("text", "notes"))
        if any(c.kind == "text" for c in item.changes):
            change = "; ".join(filter(None, [change, "protocol text changed"]))
        rows.append(
            SummaryRow(
                criterion=item.key,
                change=change or item.status,
                before=f"{was.text} [{was.rule}]" if was else "",
                after=f"{now.text} [{now.rule}]" if now else "",
                rationale=(now.rationale if now else "") or "",
                affected=run.criteria.get(item.key, 0) if run else None,
            )
        )
    replay = None
    if run:
        replay = {"run": run.id, "screenings": run.total, "changed": run.changed, "transitions": run.transitions}
    return rows, replay


def summary_markdown(before: ProtocolVersion, after: ProtocolVersion) -> str:
    rows, replay = summary(before, after)
    code = after.protocol.code
    lines = [
        f"# Summary of changes: {code} version {before.number} → version {after.number}",
        "",
        "| Criterion | Change | Before | After | Rationale | Subjects affected |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        affected = "not replayed" if row.affected is None else str(row.affected)
        cells = [row.criterion, row.change, row.before, row.after, row.rationale, affected]
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    lines.append("")
    if replay:
        moves = ", ".join(f"{k}: {v}" for k, v in sorted(replay["transitions"].items())) or "none"
        lines.append(
            f"Impact replay #{replay['run']}: {replay['changed']} of {replay['screenings']} stored screenings"
            f" change decision ({moves})."
        )
    else:
        lines.append("No impact replay has been run between these versions: subjects affected are not known.")
    return "\n".join(lines) + "\n"


def summary_csv(before: ProtocolVersion, after: ProtocolVersion) -> str:
    rows, _ = summary(before, after)
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(["criterion", "change", "before", "after", "rationale", "subjects_affected"])
    for row in rows:
        writer.writerow(
            [
                row.criterion,
                row.change,
                row.before,
                row.after,
                row.rationale,
                "" if row.affected is None else row.affected,
            ]
        )
    return buffer.getvalue()
