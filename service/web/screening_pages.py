"""Screening pages for screening staff: plain, fast, printable. The form is made from the data dictionary."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, Field, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from rules.compiler import CompiledProtocol
from rules.decision import Verdict
from rules.dictionary import Variable
from rules.errors import SubjectInputError, SubjectInputErrors
from rules.relevance import Relevance, input_sections, relevance
from service import screenings
from service.attrition import chart_svg, funnel
from service.auth import actor, own_site, page_roles
from service.errors import DomainError, Unreadable
from service.infra.models import Cohort, Protocol, ProtocolVersion, Screening, db
from service.infra.registry import registry
from service.versions import VersionError, find_version

bp = Blueprint("screening_pages", __name__)
BOOLEAN_CHOICES = [SelectChoice("", "—"), SelectChoice("yes"), SelectChoice("no")]


# "×109/L" in text copied from a PDF is 10^9/L with the superscript lost: a count per litre is
# only ever written as a power of ten, so `×10` + 9 or 12 before `/L` is read as the power.
_LOST_SUPERSCRIPT = re.compile(r"([×x]\s?10)(9|12)(?=\s?/L)")
_SUPERSCRIPT = str.maketrans("0123456789-+", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺")


@bp.app_template_filter("superscripts")
def superscripts(text: str) -> str:
    """Units as printed on a lab report: `x10^9/L` and a PDF's `×109/L` as `×10⁹/L`."""
    text = re.sub(r"(?<![A-Za-z])x(?=10\^)", "×", text)
    text = _LOST_SUPERSCRIPT.sub(lambda m: f"{m.group(1)}^{m.group(2)}", text)
    return re.sub(r"\^([-+]?\d+)", lambda m: m.group(1).translate(_SUPERSCRIPT), text)


_LONG_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d{3,})(?![\d.])")


def _significant(match: re.Match[str]) -> str:
    """Three significant digits, never fewer than the whole part: 13.683 -> 13.7, 0.08456 -> 0.0846."""
    value = float(match.group(0))
    whole = len(match.group(1).lstrip("0"))
    if whole:
        return f"{value:.{max(0, 3 - whole)}f}"
    return f"{value:.3g}" if value else "0"


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@bp.app_template_filter("readable")
def readable(sentence: str) -> str:
    """An explanation for people: computed values to lab precision (the API keeps every digit), units as printed.

    A value keeps its digits where rounding would make it read equal to another number of the sentence
    (an INR of 1.505 is not shown as "1.50 is above 1.5")."""
    numbers = [float(n) for n in _NUMBER.findall(sentence)]

    def shorten(match: re.Match[str]) -> str:
        rounded = _significant(match)
        original = float(match.group(0))
        if any(float(rounded) == other != original for other in numbers):
            return match.group(0)
        return rounded

    return superscripts(_LONG_DECIMAL.sub(shorten, sentence))


Sections = list[tuple[str, list[Variable]]]


def _sections(compiled: CompiledProtocol, found: Relevance) -> Sections:
    """The input variables some applicable criterion reads, by section in dictionary order; LLN/ULN go beside them."""
    sections = [
        (name, [v for v in variables if found.used(v.name)]) for name, variables in input_sections(compiled.dictionary)
    ]
    return [(name, variables) for name, variables in sections if variables]


def form_class(compiled: CompiledProtocol, sections: Sections | None = None) -> type[FlaskForm]:
    """A WTForms form with one optional field per variable asked, and a unit choice where there is one.

    Without `sections`: every variable some criterion of the protocol reads."""
    sections = _sections(compiled, relevance(compiled, None)) if sections is None else sections

    class ScreeningForm(FlaskForm):
        subject_id = StringField("Subject id (pseudonymous)", validators=[DataRequired()])
        site = StringField("Site", validators=[DataRequired()])
        screening_date = DateField("Screening date", validators=[DataRequired()], default=dt.date.today)
        # One key per rendered form: a double-click or a resubmitted page stores the screening once.
        submission = HiddenField(default=lambda: uuid.uuid4().hex, validators=[Length(max=64)])

    for _, variables in sections:
        for variable in variables:
            d = variable.definition
            if variable.type == "boolean":
                field: Field = SelectField(d.label, choices=BOOLEAN_CHOICES, default="")
            elif variable.type == "code":
                field = SelectField(
                    d.label, choices=[SelectChoice("", "—"), *(SelectChoice(c) for c in d.codes)], default=""
                )
            elif variable.type == "date":
                field = StringField(d.label, render_kw={"type": "date"})
            elif variable.type == "list":
                placeholder = "A10BK01, 2026-10-01, 2026-11-01, 10 mg" if d.system else "ATC: A10BK01, 2026-10-01"
                field = TextAreaField(d.label, render_kw={"rows": 3, "placeholder": placeholder, "spellcheck": "false"})
            else:
                # A value in another unit is typed after the number ("2100 /µL"), as the lab report prints it:
                # no unit menu to tab through. A phone then needs its text keyboard, not the numeric one.
                keys = {"autocomplete": "off", "spellcheck": "false"}
                keys["inputmode"] = "text" if len(variable.accepted_units) > 1 else "decimal"
                field = StringField(d.label, render_kw=keys)
                for limit in ("lln", "uln"):
                    if getattr(d, limit):
                        limit_field = StringField(limit.upper(), render_kw=keys)
                        setattr(ScreeningForm, f"{d.name}_{limit}", limit_field)
            setattr(ScreeningForm, d.name, field)
    return ScreeningForm


LIST_HELP = (
    "One entry per line: code, start date, end date, dose (e.g. `A10BK01, 2026-10-01, , 10 mg`);"
    " prefix the code with its system where the list has none (`ICD-10-CM: E11.9`)."
    " Leave empty if not known; write `none` if there are none."
)
_DOSE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(.*?)\s*$")


def list_entries(text: str) -> list[dict[str, Any]] | None:
    """A list typed one entry per line (`code, start, end, dose`) as the API's entries; None when empty.

    Only the shape is read here: the dictionary checks every entry and names a bad one by its line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    if len(lines) == 1 and lines[0].lower() == "none":
        return []
    entries = []
    for line in lines:
        code, start, end, dose, *rest = [*(cell.strip() for cell in line.split(",")), "", "", "", ""]
        entry: dict[str, Any] = {"code": code}
        system, colon, bare = code.rpartition(":")
        if colon:
            entry.update(system=system.strip(), code=bare.strip())
        entry.update({key: value for key, value in (("start", start), ("end", end)) if value})
        if dose:
            match = _DOSE.match(dose)
            entry.update({"value": match.group(1), "unit": match.group(2) or None} if match else {"value": dose})
        if any(rest):
            entry["extra"] = ", ".join(r for r in rest if r)  # refused by name: "medications[1].extra"
        entries.append(entry)
    return entries


_DECIMAL_COMMA = re.compile(r"^(\s*[-+]?)(\d+),(\d+)(?!\d)")


def decimal_point(raw: str) -> str:
    """`4,2` as `4.2`: a decimal comma, as many sites write. `1,000` stays as typed (and is refused):
    a comma before exactly three digits may be a thousands separator, and a guess could be off by 1000."""
    match = _DECIMAL_COMMA.match(raw)
    if match is None or (len(match.group(3)) == 3 and match.group(2).lstrip("0")):
        return raw
    return f"{match.group(1)}{match.group(2)}.{match.group(3)}{raw[match.end() :]}"


_SUPERSCRIPT_POWER = re.compile("⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_PLAIN_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def unit_key(label: str) -> str:
    """A unit as a screener may type it, folded: case, µ/μ/u, ×/x, spaces and superscripts do not count.

    `/ul`, `/μL` and `/µL` are one unit; so are `x10^9/L` and `×10⁹/L`. eligo.js folds the same way."""
    folded = _SUPERSCRIPT_POWER.sub(lambda power: "^" + power.group(0).translate(_PLAIN_DIGITS), label)
    return re.sub(r"\s+", "", folded).lower().replace("μ", "u").replace("µ", "u").replace("×", "x")


@bp.app_template_filter("unit_keys")
def unit_keys(factors: dict[str, float]) -> dict[str, float]:
    """A guard's unit factors keyed as eligo.js folds a typed unit."""
    return {unit_key(unit): factor for unit, factor in factors.items()}


_TYPED = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(\S.*?)?\s*$")


def _number(variable: Variable, raw: str, default_unit: str | None = None) -> tuple[Any, str | None]:
    """A typed number and the accepted unit typed after it (else `default_unit`), for the dictionary to check.

    A unit matches an accepted one as `unit_key` folds it; one that matches none is passed on as typed,
    and the dictionary refuses it naming the accepted units. Text that is no number is passed on whole."""
    match = _TYPED.match(decimal_point(raw))
    if match is None:
        return raw, None
    number, typed = match.groups()
    if not typed:
        return number, default_unit
    accepted = {unit_key(u): u for u in variable.accepted_units}
    return number, accepted.get(unit_key(typed), typed)


def _inputs(form: FlaskForm, sections: Sections) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for _, variables in sections:
        for variable in variables:
            name = variable.name
            if variable.type == "list":
                entries = list_entries(form[name].data or "")
                if entries is not None:
                    inputs[name] = entries
                continue
            raw = (form[name].data or "").strip() if isinstance(form[name].data, str) else form[name].data
            if variable.type != "number":
                if raw:
                    inputs[name] = raw
                continue
            unit = None
            if raw:
                number, unit = _number(variable, raw)
                inputs[name] = {"value": number, "unit": unit} if unit and unit != variable.unit else number
            for limit in ("lln", "uln"):
                limit_field = form._fields.get(f"{name}_{limit}")
                if limit_field and limit_field.data and limit_field.data.strip():
                    # A limit typed without a unit is in the value's unit: both come from one lab report.
                    given, own = _number(variable, limit_field.data.strip(), unit)
                    converted = own and own != variable.unit
                    inputs[f"{name}_{limit}"] = {"value": given, "unit": own} if converted else given
    return inputs


ALL = "all"  # the one form of a trial without cohorts


@bp.get("/screen")
@page_roles("screener")
def choose():
    protocols = db.session.execute(select(Protocol).order_by(Protocol.code)).scalars().all()
    published = [(p, p.current()) for p in protocols if p.current() is not None]
    return render_template("screen_choose.html", published=published)


@dataclass
class FormPage:
    """The screening form of a protocol's current version for one cohort (or all subjects, without cohorts)."""

    version: ProtocolVersion
    compiled: CompiledProtocol
    cohort: str
    cohorts: dict[str, str]  # code: label; empty for a trial without cohorts
    found: Relevance
    sections: Sections
    form: FlaskForm
    site: str | None  # the screener's own site, fixed on the form

    def render(self, problem: Any = None, unplaced: list[str] | None = None) -> str:
        return render_template(
            "screen_form.html",
            form=self.form,
            sections=self.sections,
            relevance=self.found,
            version=self.version,
            cohort=self.cohort,
            cohort_label=self.cohorts.get(self.cohort, "all subjects"),
            site_fixed=self.site is not None,
            problem=problem,
            unplaced=unplaced or [],
            list_help=LIST_HELP,
        )


def form_page(code: str, cohort: str) -> FormPage:
    """The page's version, cohort and form with what was submitted; 404 for an unknown protocol or cohort."""
    try:
        version = find_version(code)
    except VersionError:
        abort(404)
    compiled = registry().compiled(version)
    cohorts = {c.code: c.label for c in compiled.definition.cohorts}
    if cohort not in cohorts and not (cohort == ALL and not cohorts):
        abort(404)
    found = relevance(compiled, cohort if cohorts else None)
    sections = _sections(compiled, found)
    return FormPage(version, compiled, cohort, cohorts, found, sections, form_class(compiled, sections)(), own_site())


@bp.route("/screen/<code>/<cohort>", methods=["GET", "POST"])
@page_roles("screener")
def screen(code: str, cohort: str):
    page = form_page(code, cohort)
    version, cohorts, sections, form, site = page.version, page.cohorts, page.sections, page.form, page.site
    if request.method == "GET":
        if site:
            form.site.data = site
        previous = request.args.get("from", "")
        if previous.isdigit():
            _prefill(form, sections, _visible(db.session.get(Screening, int(previous)) or abort(404)))
    problem, unplaced = None, []
    if form.validate_on_submit():
        payload = {
            "protocol": code,
            "version": version.number,
            "subject_id": form.subject_id.data.strip(),
            "site": site or form.site.data.strip(),
            "screening_date": form.screening_date.data.isoformat(),
            "cohort": cohort if cohorts else None,
            "inputs": _inputs(form, sections),
        }
        try:
            key = f"form-{form.submission.data}" if form.submission.data else None
            try:
                screening, _ = screenings.screen(payload, actor(), key, site=site)
            except screenings.KeyReused:
                # Back, edit, submit again: the page's key already stored the earlier values. This is a
                # new screening, not a double submit; it gets a key of its own.
                db.session.rollback()
                screening, _ = screenings.screen(payload, actor(), f"form-{uuid.uuid4().hex}", site=site)
            return redirect(url_for("screening_pages.result", screening_id=screening.id))
        except DomainError as error:
            db.session.rollback()
            problem = error.message
            unplaced = _place_errors(form, error.problems)
    return page.render(problem, unplaced)


_ENTRY = re.compile(r"^(\w+)\[(\d+)\]\.?(\w*)$")


def _place_errors(form: FlaskForm, errors: list[dict[str, Any]]) -> list[str]:
    """Each refused value's message on the field it was typed in (value, unit, LLN or ULN); the rest returned."""
    unplaced = []
    for item in errors:
        name = (item.get("field") or "").removeprefix("inputs.")
        message = f"{item.get('value')!r}: expected {item.get('expected')}"
        base, _, part = name.partition(".")
        entry = _ENTRY.match(name)
        if entry:  # a list's entry: the line the screener typed it on
            base, line, part = entry.group(1), int(entry.group(2)) + 1, entry.group(3)
            message = f"line {line}" + (f" ({'dose' if part == 'value' else part})" if part else "") + ": " + message
            target = form._fields.get(base)
        elif part in ("uln", "lln"):
            target = form._fields.get(f"{base}_{part}")
        else:  # the value, or the unit typed after it
            target = form._fields.get(base)
        if target is None:
            unplaced.append(f"{name or 'subject'}: {message}")
        else:
            target.errors = [*target.errors, message]
    return unplaced


def _prefill(form: FlaskForm, sections: Sections, previous: Screening | SimpleNamespace) -> None:
    """The form as the previous screening of the subject left it, so a re-screen types only what changed.

    The screening date stays today's: a re-screen is a new screening."""
    form.subject_id.data = previous.subject_id
    form.site.data = form.site.data or previous.site
    given = previous.inputs or {}
    for _, variables in sections:
        for variable in variables:
            name = variable.name
            for key in (name, f"{name}_lln", f"{name}_uln"):
                if key not in given or key not in form._fields:
                    continue
                value = given[key]
                if variable.type == "list" and key == name:
                    form[key].data = _list_text(value)
                    continue
                if isinstance(value, dict):
                    unit = value.get("unit") if value.get("unit") != variable.unit else None
                    for limit in ("lln", "uln"):
                        if value.get(limit) is not None and f"{name}_{limit}" in form._fields:
                            form[f"{name}_{limit}"].data = str(value[limit])  # in the value's unit
                    value = value.get("value")
                    if value is not None and unit:
                        value = f"{value} {unit}"
                if value is None:
                    continue
                if variable.type == "boolean" and key == name:
                    value = (
                        "yes"
                        if value in (True, "yes", "true", "1", 1)
                        else "no"
                        if value in (False, "no", "false", "0", 0)
                        else str(value)
                    )
                form[key].data = str(value)


def _list_text(entries: Any) -> str:
    """A list's entries back as the lines the screener types (`code, start, end, dose`)."""
    if entries == []:
        return "none"
    lines = []
    for entry in entries if isinstance(entries, list) else []:
        code = f"{entry['system']}: {entry.get('code', '')}" if entry.get("system") else str(entry.get("code", ""))
        dose = " ".join(str(entry[k]) for k in ("value", "unit") if entry.get(k) is not None)
        lines.append(", ".join([code, entry.get("start", ""), entry.get("end", ""), dose]).rstrip(", "))
    return "\n".join(lines)


def _visible(screening: Screening) -> Screening:
    site = own_site()
    if site is not None and screening.site != site:
        abort(404)
    return screening


@bp.get("/screenings/<int:screening_id>")
@page_roles("screener", "reviewer")
def result(screening_id: int):
    screening = db.session.get(Screening, screening_id) or abort(404)
    _visible(screening)
    explained = screenings.full_result(screening)
    criteria = explained["criteria"]
    order = {"fail": 0, "unknown": 1, "pass": 2, "not_applicable": 3}
    compiled = registry().compiled(screening.version)
    return render_template(
        "screen_result.html",
        screening=screening,
        result=explained,
        to_collect=to_collect(compiled, screening) if explained["decision"] == "incomplete" else [],
        applicable=sorted((c for c in criteria if c["outcome"] != "not_applicable"), key=lambda c: order[c["outcome"]]),
        not_applicable=[c for c in criteria if c["outcome"] == "not_applicable"],
    )


@dataclass(frozen=True)
class ToCollect:
    """What to collect for one undecided criterion: labels, and the follow-ups an earlier answer may call for."""

    code: str
    text: str
    now: list[str]
    follow_ups: list[str]


def to_collect(compiled: CompiledProtocol, screening: Screening) -> list[ToCollect]:
    """The missing values that could still settle each undecided criterion, by criterion, as labels.

    A value the subject's other answers make moot is left out (rules/relevance); a follow-up that waits
    for an earlier missing answer, a yes/no or a lab value, is listed as one. Labels come in the form's
    order. Only for an incomplete decision: once a criterion fails, no further value can make the
    subject eligible."""
    variables = compiled.dictionary.variables
    subject = {**(screening.inputs or {}), "screening_date": screening.screening_date.isoformat()}
    if screening.cohort:
        subject["cohort"] = screening.cohort
    try:
        values = compiled.dictionary.normalize(subject).values
    except (SubjectInputError, SubjectInputErrors):  # decided by an older dictionary: list as recorded
        values = {}
    order = [v.name for _, section in input_sections(compiled.dictionary) for v in section]
    position = {name: i for i, name in enumerate(order)}

    def place(name: str) -> tuple[int, bool]:
        """In the form's order, a ULN or LLN just after its value."""
        variable = variables.get(name)
        return (position.get(variable.companion_of or name, 0), bool(variable.companion_of)) if variable else (0, False)

    found = []
    for criterion in screenings.full_result(screening)["criteria"]:
        if criterion["outcome"] != "unknown":
            continue
        scope = relevance(compiled, screening.cohort, criterion["code"])
        asked, moot = scope.asked(values, wait_for_labs=True), scope.hidden(values)
        now: list[str] = []
        follow_ups: list[str] = []
        for name in sorted(criterion.get("missing") or [], key=place):
            variable = variables.get(name)
            if variable is None:
                now.append(name)
                continue
            base = variable.companion_of or name
            if base in moot:
                continue
            (now if base in asked or not scope.used(base) else follow_ups).append(variable.label)
        if now or follow_ups:
            found.append(ToCollect(criterion["code"], criterion["text"], now, follow_ups))
    return found


LOG_FILTERS = ("protocol", "version", "site", "cohort", "decision", "from", "to", "subject_id")


@dataclass(frozen=True)
class LogFilters:
    """The filters as a page applies them, and each refused one's message by its name."""

    chosen: screenings.LogFilter
    applied: dict[str, str]  # the usable filters as typed: what paging and the CSV export carry
    problems: dict[str, str]


def log_filters(args: Mapping[str, str], site: str | None) -> LogFilters:
    """Each filter checked on its own: a bad one is named with what was expected and left out, the others applied.

    A screener tied to a site sees that site's log whatever the `site` filter says."""
    applied, problems = _checked(args, LOG_FILTERS)
    protocols = db.session.execute(select(Protocol.code).order_by(Protocol.code)).scalars().all()
    _one_of(applied, problems, "protocol", protocols, "no protocol: none is stored yet")
    _one_of(applied, problems, "cohort", log_cohorts(applied.get("protocol")), "no cohort: this protocol has none")
    chosen = _in_order(applied, problems)
    if site is not None:
        chosen = replace(chosen, site=site)
    return LogFilters(chosen, applied, problems)


def _checked(args: Mapping[str, str], keys: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """The filters the log's parser accepts, as typed, and each refused one's message, each checked alone."""
    applied: dict[str, str] = {}
    problems: dict[str, str] = {}
    for key in keys:
        value = (args.get(key) or "").strip()
        if not value:
            continue
        try:
            screenings.parse_filter({key: value})
        except DomainError as error:
            problems[key] = _filter_problem(error.problems[0])
        else:
            applied[key] = value
    return applied, problems


def _one_of(applied: dict[str, str], problems: dict[str, str], key: str, known: Sequence[str], none: str) -> None:
    """Leave out a filter naming something that does not exist (a protocol, a cohort), saying what does."""
    if key in applied and applied[key] not in known:
        expected = f"one of {', '.join(known)}" if known else none
        problems[key] = _filter_problem({"value": applied.pop(key), "expected": expected})


def _in_order(applied: dict[str, str], problems: dict[str, str]) -> screenings.LogFilter:
    """The applied filters; a period ending before it starts loses its end, saying so."""
    chosen = screenings.parse_filter(applied)
    if chosen.date_from and chosen.date_to and chosen.date_to < chosen.date_from:
        expected = f"a date on or after {chosen.date_from.isoformat()}"
        problems["to"] = _filter_problem({"value": applied.pop("to"), "expected": expected})
        chosen = replace(chosen, date_to=None)
    return chosen


def _filter_problem(item: Mapping[str, Any]) -> str:
    return f"{item.get('value')!r}: expected {item.get('expected')}; not applied"


def log_cohorts(protocol: str | None) -> list[str]:
    """The cohort codes of any version of `protocol` (of every protocol when None), in their protocols' order."""
    query = select(Cohort.code).join(ProtocolVersion).join(Protocol).order_by(Protocol.code, Cohort.position)
    if protocol:
        query = query.where(Protocol.code == protocol)
    return list(dict.fromkeys(db.session.execute(query).scalars()))


@bp.get("/log")
@page_roles("screener", "reviewer")
def log():
    site = own_site()
    filters = log_filters(request.args, site)
    problems = dict(filters.problems)
    raw_page, number = request.args.get("page", "").strip(), 1
    if re.fullmatch(r"0*[1-9][0-9]{0,8}", raw_page):
        number = int(raw_page)
    elif raw_page:
        problems["page"] = _filter_problem({"value": raw_page, "expected": "a page number from 1"})
    size = current_app.config["LOG_PAGE_SIZE"]
    page = screenings.page(filters.chosen, number, size)
    pages = max(1, -(-page["total"] // size))
    if number > pages:
        problems["page"] = f"{number!r}: expected a page from 1 to {pages}; showing page {pages}"
        page = screenings.page(filters.chosen, pages, size)
    protocols = db.session.execute(select(Protocol.code).order_by(Protocol.code)).scalars().all()
    return render_template(
        "log.html",
        page=page,
        pages=pages,
        chosen=filters.chosen,
        typed={key: request.args.get(key, "") for key in LOG_FILTERS},
        problems=problems,
        protocols=protocols,
        cohorts=log_cohorts(filters.applied.get("protocol")),
        decisions=tuple(Verdict),
        site_fixed=site is not None,
        query=filters.applied,
    )


def funnel_filters(args: Mapping[str, str], cohorts: list[str]) -> LogFilters:
    """The attrition page's cohort (one of `cohorts`) and period; a bad one is named, the others applied."""
    applied, problems = _checked(args, ("cohort", "from", "to"))
    _one_of(applied, problems, "cohort", cohorts, "no cohort: this protocol has none")
    return LogFilters(_in_order(applied, problems), applied, problems)


def _funnel_version(code: str) -> ProtocolVersion:
    number = request.args.get("version")
    try:
        return find_version(code, int(number) if number and number.isdigit() else None)
    except VersionError:
        abort(404)


@bp.get("/protocols/<code>/attrition")
@page_roles("screener", "reviewer", "writer")
def attrition_page(code: str):
    version = _funnel_version(code)
    filters = funnel_filters(request.args, [c.code for c in version.cohorts])
    data = funnel(version, own_site(), filters.chosen.cohort, filters.chosen.date_from, filters.chosen.date_to)
    return render_template(
        "attrition.html",
        version=version,
        funnel=data,
        problems=filters.problems,
        typed={key: request.args.get(key, "") for key in ("from", "to")},
        query={**filters.applied, **({"version": str(version.number)} if request.args.get("version") else {})},
    )


@bp.get("/protocols/<code>/attrition.svg")
@page_roles("screener", "reviewer", "writer")
def attrition_svg(code: str):
    version = _funnel_version(code)
    filters = funnel_filters(request.args, [c.code for c in version.cohorts])
    if filters.problems:
        problems = [{"field": k, "value": request.args.get(k), "expected": m} for k, m in filters.problems.items()]
        raise Unreadable("the chart's filters cannot be used", problems)
    data = funnel(version, own_site(), filters.chosen.cohort, filters.chosen.date_from, filters.chosen.date_to)
    return chart_svg(data), 200, {"Content-Type": "image/svg+xml"}
