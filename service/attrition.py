"""Attrition as a funnel, as OHDSI ATLAS draws it: the subjects remaining after each criterion in protocol order.

A subject counts once, at their latest screening under the version within the chosen
cohort, site and period. Criteria are applied one after the other in protocol order:
the subjects a criterion fails leave the funnel there, and are not counted again by
later criteria. A criterion whose outcome is unknown does not remove anyone (the
subject is incomplete, not excluded): the step says how many remain undecided on it.
So the last step's remaining subjects are exactly the eligible and the incomplete.

The chart is drawn on the server as plain SVG: a few bars need no charting library,
and the page stays fast and printable. The page shows the same figures as a table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from sqlalchemy import select

from service.infra.models import ProtocolVersion, Screening, db


@dataclass(frozen=True)
class Step:
    """One criterion of the funnel."""

    code: str
    kind: str
    text: str
    remaining: int  # not excluded by this criterion nor by any before it
    excluded: int  # failed this criterion, having passed (or not yet settled) every one before
    unknown: int  # of the remaining, those this criterion could not decide yet


@dataclass(frozen=True)
class Funnel:
    screened: int
    eligible: int
    not_eligible: int
    incomplete: int
    steps: list[Step]
    cohort: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    cohorts: list[str] = field(default_factory=list)

    def share(self, count: int) -> float:
        """`count` as a percentage of the subjects screened."""
        return 100 * count / self.screened if self.screened else 0.0

    def period(self) -> str:
        if self.date_from and self.date_to:
            return f"screened {self.date_from.isoformat()} to {self.date_to.isoformat()}"
        if self.date_from:
            return f"screened from {self.date_from.isoformat()}"
        if self.date_to:
            return f"screened up to {self.date_to.isoformat()}"
        return "all screening dates"


def funnel(
    version: ProtocolVersion,
    site: str | None = None,
    cohort: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> Funnel:
    """The funnel of `version`'s screenings: of one cohort (None: all), one site (None: all), one period."""
    query = select(Screening.subject_id, Screening.decision, Screening.result).where(Screening.version_id == version.id)
    if site is not None:
        query = query.where(Screening.site == site)
    if cohort is not None:
        query = query.where(Screening.cohort == cohort)
    if date_from is not None:
        query = query.where(Screening.screening_date >= date_from)
    if date_to is not None:
        query = query.where(Screening.screening_date <= date_to)
    latest: dict[str, tuple[str, dict[str, str]]] = {}
    for subject_id, decision, result in db.session.execute(query.order_by(Screening.id)):
        latest[subject_id] = (decision, {c["code"]: c["outcome"] for c in result["criteria"]})
    decisions = {"eligible": 0, "not_eligible": 0, "incomplete": 0}
    for decision, _ in latest.values():
        decisions[decision] += 1
    criteria = [c for c in version.criteria if cohort is None or not c.cohorts or cohort in c.cohorts]
    remaining = list(latest.values())
    steps = []
    for criterion in criteria:
        kept = [subject for subject in remaining if subject[1].get(criterion.code) != "fail"]
        unknown = sum(1 for _, outcomes in kept if outcomes.get(criterion.code) == "unknown")
        steps.append(
            Step(criterion.code, criterion.kind, criterion.text, len(kept), len(remaining) - len(kept), unknown)
        )
        remaining = kept
    return Funnel(
        len(latest),
        decisions["eligible"],
        decisions["not_eligible"],
        decisions["incomplete"],
        steps,
        cohort,
        date_from,
        date_to,
        [c.code for c in version.cohorts],
    )


def chart_svg(data: Funnel, width: int = 720) -> str:
    """The funnel as horizontal bars: subjects screened, then remaining after each criterion."""
    row, left, top = 24, 110, 34
    rows = [("Screened", "all subjects screened", data.screened, 0)] + [
        (step.code, step.text, step.remaining, step.excluded) for step in data.steps
    ]
    height = top + row * len(rows) + 16
    scale = (width - left - 150) / max(data.screened, 1)
    who = f"{data.cohort} subjects" if data.cohort else "subjects"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' role="img" aria-labelledby="attrition-title" font-family="system-ui, sans-serif" font-size="13">',
        f'<title id="attrition-title">{escape(who.capitalize())} remaining after each criterion in protocol order,'
        f" of {data.screened} screened ({escape(data.period())})</title>",
        f'<text x="0" y="18" font-weight="600">Remaining of {data.screened} {escape(who)} screened'
        f" ({data.eligible} eligible, {data.not_eligible} not eligible, {data.incomplete} incomplete)</text>",
    ]
    for index, (code, text, count, lost) in enumerate(rows):
        y = top + index * row
        length = max(count * scale, 1)
        lost_text = f", −{lost}" if lost else ""
        parts += [
            f"<g><title>{escape(code)}: {escape(text)}</title>",
            f'<text x="0" y="{y + 15}">{escape(code)}</text>',
            f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" fill="#2454a6" rx="2"/>',
            f'<text x="{left + length + 6:.1f}" y="{y + 15}">{count} ({data.share(count):.0f}%{lost_text})</text></g>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)
