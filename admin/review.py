"""The amendment reviewer's pages: the diff side by side, the impact replay, the summary of changes.

Everything shown here is what the API already computes (rules.diff, service.impact,
service.amendments); these views only arrange it for a person. The impact replay is started,
followed and cancelled from the page by static/review.js through the JSON API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, abort, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from sqlalchemy import select

from admin.access import RoleAccess
from rules.diff import ItemDiff, ProtocolDiff
from service import amendments, impact, versions
from service.auth import has_role
from service.infra.models import DRAFT, ImpactChange, ImpactRun, ProtocolVersion, Screening, db

CHANGES_SHOWN = 200  # per direction; the rest are counted, and listed by the API


@dataclass
class Direction:
    """The screenings an amendment moves one way (e.g. eligible → not eligible)."""

    before: str
    after: str
    count: int
    items: list[dict[str, Any]]


def compared(version: ProtocolVersion, from_number: int | None) -> ProtocolVersion | None:
    """What a version is reviewed against: `from`, else its base, else the current published version."""
    if from_number is not None:
        return versions.find_version(version.protocol.code, from_number)
    if version.based_on is not None:
        return version.based_on
    current = version.protocol.current()
    return current if current is not None and current.id != version.id else None


def _side(item: dict[str, Any] | None, *fields: str) -> list[tuple[str, Any]]:
    if item is None:
        return []
    return [(name, item[name]) for name in fields if item.get(name) not in (None, "", [], ())]


def diff_rows(result: ProtocolDiff) -> list[tuple[str, list[dict[str, Any]]]]:
    """The diff as sections of rows: each row the item's before and after side by side, and its changes."""
    shown = {
        "Criteria": ("kind", "text", "rule", "cohorts"),
        "Data dictionary": ("label", "type", "unit", "units", "minimum", "maximum", "codes", "formula", "condition"),
        "Value sets": ("label", "system", "codes", "half_life"),
        "Cohorts": ("label",),
    }
    sections = []
    for title, items in (
        ("Criteria", result.criteria),
        ("Data dictionary", result.variables),
        ("Value sets", result.value_sets),
        ("Cohorts", result.cohorts),
    ):
        rows = [_row(item, shown[title]) for item in items]
        if rows:
            sections.append((title, rows))
    return sections


def _row(item: ItemDiff, fields: tuple[str, ...]) -> dict[str, Any]:
    before, after = item.before or {}, item.after or {}
    return {
        "key": item.key,
        "status": item.status,
        "before": _side(item.before, *fields),
        "after": _side(item.after, *fields),
        "changed": {name for name in fields if item.status == "changed" and before.get(name) != after.get(name)},
        "changes": item.changes,
    }


def latest_run(before: ProtocolVersion, after: ProtocolVersion) -> ImpactRun | None:
    """The newest run between the two versions, whatever its state (a running one is followed by the page)."""
    return db.session.execute(
        select(ImpactRun)
        .where(ImpactRun.from_version_id == before.id, ImpactRun.to_version_id == after.id)
        .order_by(ImpactRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def directions(run: ImpactRun) -> list[Direction]:
    """The run's changed screenings grouped by the way their decision moved, each with its causes."""
    found: dict[tuple[str, str], Direction] = {}
    for key, count in sorted(run.transitions.items(), key=lambda kv: -kv[1]):
        before, _, after = key.partition("→")
        found[(before, after)] = Direction(before, after, count, [])
    rows = db.session.execute(
        select(ImpactChange, Screening.subject_id, Screening.site)
        .join(Screening, Screening.id == ImpactChange.screening_id)
        .where(ImpactChange.run_id == run.id)
        .order_by(ImpactChange.id)
    )
    for change, subject_id, site in rows:
        group = found.setdefault((change.before, change.after), Direction(change.before, change.after, 0, []))
        if len(group.items) < CHANGES_SHOWN:
            group.items.append(
                {
                    "subject_id": subject_id,
                    "site": site,
                    "causes": change.causes,
                    "url": url_for("screening_pages.result", screening_id=change.screening_id),
                }
            )
    return list(found.values())


def review_context(before: ProtocolVersion | None, after: ProtocolVersion) -> dict[str, Any]:
    """What the review page and the signing page show: diff, impact, summary of changes."""
    if before is None:
        return {"before": None, "after": after}
    run = latest_run(before, after)
    done = impact.latest_done(before, after)
    rows, replay = amendments.summary(before, after)
    return {
        "before": before,
        "after": after,
        "sections": diff_rows(amendments.protocol_diff(before, after)),
        "run": run,
        "run_state": impact.describe(run) if run else None,
        "done": done,
        "directions": directions(done) if done else [],
        "summary_rows": rows,
        "replay": replay,
        "can_replay": has_role(current_user, "reviewer"),
    }


class ReviewView(RoleAccess, BaseView):
    """Amendments to review: each one's diff, impact replay and summary of changes on one page."""

    roles = ("writer", "reviewer")

    @expose("/")
    def index(self) -> str:
        amended = (
            db.session.execute(
                select(ProtocolVersion).order_by(ProtocolVersion.protocol_id, ProtocolVersion.number.desc())
            )
            .scalars()
            .all()
        )
        return self.render("admin_eligo/review_index.html", versions=amended)

    def _version(self, version_id: int) -> ProtocolVersion:
        version = db.session.get(ProtocolVersion, version_id)
        if version is None:
            abort(404, description=f"no protocol version {version_id}")
        return version

    def _from(self) -> int | None:
        raw = request.args.get("from")
        if not raw:
            return None
        if not raw.isdigit():
            abort(400, description=f"`from` must be a version number, not {raw[:40]!r}")
        return int(raw)

    @expose("/<int:version_id>")
    def version(self, version_id: int) -> str:
        after = self._version(version_id)
        try:
            before = compared(after, self._from())
        except versions.VersionError as error:
            abort(error.status, description=error.message)
        stale = versions.published_since(after) if after.status == DRAFT else []
        return self.render(
            "admin_eligo/review.html",
            **review_context(before, after),
            stale=versions.StaleDraft(after, stale) if stale else None,
            others=[v for v in after.protocol.versions if v.id != after.id],
        )

    def _summary(self, version_id: int, fmt: str) -> Response:
        after = self._version(version_id)
        try:
            before = compared(after, self._from())
        except versions.VersionError as error:
            abort(error.status, description=error.message)
        if before is None:
            abort(404, description="this version has nothing to be compared with")
        name = f"{after.protocol.code}-v{before.number}-v{after.number}-summary.{fmt}"
        if fmt == "md":
            body, mimetype = amendments.summary_markdown(before, after), "text/markdown"
        else:
            body, mimetype = amendments.summary_csv(before, after), "text/csv"
        return Response(body, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"})

    @expose("/<int:version_id>/summary.md")
    def summary_markdown(self, version_id: int) -> Response:
        return self._summary(version_id, "md")

    @expose("/<int:version_id>/summary.csv")
    def summary_csv(self, version_id: int) -> Response:
        return self._summary(version_id, "csv")
