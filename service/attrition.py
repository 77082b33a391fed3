"""Attrition: how many screened subjects each criterion turned away, as figures and as an SVG chart.

A subject counts once, at their latest screening under the version. The chart
is drawn on the server as plain SVG: a few bars need no charting library, and
the page stays fast and printable.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from sqlalchemy import select

from service.models import ProtocolVersion, Screening, db


@dataclass
class Bar:
    code: str
    text: str
    failed: int
    unknown: int


@dataclass
class Attrition:
    screened: int
    eligible: int
    not_eligible: int
    incomplete: int
    bars: list[Bar]


def attrition(version: ProtocolVersion, site: str | None = None) -> Attrition:
    query = select(Screening.subject_id, Screening.decision, Screening.result).where(Screening.version_id == version.id)
    if site is not None:
        query = query.where(Screening.site == site)
    latest: dict[str, tuple[str, dict]] = {}
    for subject_id, decision, result in db.session.execute(query.order_by(Screening.id)):
        latest[subject_id] = (decision, result)
    texts = {c.code: c.text for c in version.criteria}
    failed = {code: 0 for code in texts}
    unknown = {code: 0 for code in texts}
    decisions = {"eligible": 0, "not_eligible": 0, "incomplete": 0}
    for decision, result in latest.values():
        decisions[decision] += 1
        for criterion in result["criteria"]:
            if criterion["outcome"] == "fail":
                failed[criterion["code"]] = failed.get(criterion["code"], 0) + 1
            elif criterion["outcome"] == "unknown":
                unknown[criterion["code"]] = unknown.get(criterion["code"], 0) + 1
    bars = [Bar(code, texts.get(code, ""), failed[code], unknown.get(code, 0)) for code in failed if failed[code]]
    bars.sort(key=lambda bar: (-bar.failed, bar.code))
    return Attrition(len(latest), decisions["eligible"], decisions["not_eligible"], decisions["incomplete"], bars)


def chart_svg(data: Attrition, width: int = 720) -> str:
    """Horizontal bars: subjects failing each criterion, most first."""
    row, left, top = 26, 110, 34
    height = top + row * max(len(data.bars), 1) + 16
    most = max((bar.failed for bar in data.bars), default=1)
    scale = (width - left - 90) / most
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        ' role="img" aria-labelledby="attrition-title" font-family="system-ui, sans-serif" font-size="13">',
        f'<title id="attrition-title">Screened subjects failing each criterion, of {data.screened} screened</title>',
        f'<text x="0" y="18" font-weight="600">Failed, of {data.screened} subjects screened'
        f" ({data.eligible} eligible, {data.not_eligible} not eligible, {data.incomplete} incomplete)</text>",
    ]
    if not data.bars:
        parts.append(f'<text x="0" y="{top + 16}" fill="#5b6776">No criterion has failed yet.</text>')
    for index, bar in enumerate(data.bars):
        y = top + index * row
        length = max(bar.failed * scale, 2)
        share = 100 * bar.failed / data.screened if data.screened else 0
        parts += [
            f"<g><title>{escape(bar.code)}: {escape(bar.text)}</title>",
            f'<text x="0" y="{y + 15}">{escape(bar.code)}</text>',
            f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" fill="#b42318" rx="2"/>',
            f'<text x="{left + length + 6:.1f}" y="{y + 15}">{bar.failed} ({share:.0f}%)</text></g>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)
