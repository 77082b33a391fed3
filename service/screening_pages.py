"""Screening pages for screening staff: plain, fast, printable. The form is made from the data dictionary."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, Field, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from rules.compiler import CompiledProtocol
from service import screenings
from service.attrition import attrition, chart_svg
from service.auth import actor, own_site, page_roles
from service.errors import ApiError
from service.models import Protocol, Screening, db
from service.registry import registry
from service.versions import VersionError, find_version

bp = Blueprint("screening_pages", __name__)
BOOLEAN_CHOICES = [SelectChoice("", "—"), SelectChoice("yes"), SelectChoice("no")]


def _sections(compiled: CompiledProtocol) -> list[tuple[str, list[Any]]]:
    """Input variables grouped by section, in dictionary order; each LLN and ULN beside its variable."""
    grouped: dict[str, list[Any]] = {}
    for variable in compiled.dictionary.variables.values():
        if variable.builtin or variable.is_derived or variable.companion_of:
            continue
        grouped.setdefault(variable.definition.section or "Other", []).append(variable)
    return list(grouped.items())


def form_class(compiled: CompiledProtocol) -> type[FlaskForm]:
    """A WTForms form with one optional field per input variable, and a unit choice where there is one."""

    class ScreeningForm(FlaskForm):
        subject_id = StringField("Subject id (pseudonymous)", validators=[DataRequired()])
        site = StringField("Site", validators=[DataRequired()])
        screening_date = DateField("Screening date", validators=[DataRequired()], default=dt.date.today)
        # One key per rendered form: a double-click or a resubmitted page stores the screening once.
        submission = HiddenField(default=lambda: uuid.uuid4().hex, validators=[Length(max=64)])

    for _, variables in _sections(compiled):
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
                field = StringField(d.label, render_kw={"inputmode": "decimal", "autocomplete": "off"})
                if len(variable.accepted_units) > 1:
                    choices = [SelectChoice(u) for u in variable.accepted_units]
                    setattr(ScreeningForm, f"{d.name}__unit", SelectField("unit", choices=choices, default=d.unit))
                for limit in ("lln", "uln"):
                    if getattr(d, limit):
                        limit_field = StringField(limit.upper(), render_kw={"inputmode": "decimal"})
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


def _inputs(form: FlaskForm, compiled: CompiledProtocol) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for _, variables in _sections(compiled):
        for variable in variables:
            name = variable.name
            if variable.type == "list":
                entries = list_entries(form[name].data or "")
                if entries is not None:
                    inputs[name] = entries
                continue
            raw = (form[name].data or "").strip() if isinstance(form[name].data, str) else form[name].data
            unit_field = form._fields.get(f"{name}__unit")
            unit = unit_field.data if unit_field else None
            if raw:
                inputs[name] = {"value": raw, "unit": unit} if unit and unit != variable.unit else raw
            for limit in ("lln", "uln"):
                limit_field = form._fields.get(f"{name}_{limit}")
                if limit_field and limit_field.data and limit_field.data.strip():
                    given = limit_field.data.strip()
                    converted = unit and unit != variable.unit
                    inputs[f"{name}_{limit}"] = {"value": given, "unit": unit} if converted else given
    return inputs


ALL = "all"  # the one form of a trial without cohorts


@bp.get("/screen")
@page_roles("screener")
def choose():
    protocols = db.session.execute(select(Protocol).order_by(Protocol.code)).scalars().all()
    published = [(p, p.current()) for p in protocols if p.current() is not None]
    return render_template("screen_choose.html", published=published)


@bp.route("/screen/<code>/<cohort>", methods=["GET", "POST"])
@page_roles("screener")
def screen(code: str, cohort: str):
    try:
        version = find_version(code)
    except VersionError:
        abort(404)
    compiled = registry().compiled(version)
    cohorts = {c.code: c.label for c in compiled.definition.cohorts}
    if cohort not in cohorts and not (cohort == ALL and not cohorts):
        abort(404)
    form = form_class(compiled)()
    site = own_site()
    if request.method == "GET" and site:
        form.site.data = site
    problem = None
    if form.validate_on_submit():
        payload = {
            "protocol": code,
            "version": version.number,
            "subject_id": form.subject_id.data.strip(),
            "site": site or form.site.data.strip(),
            "screening_date": form.screening_date.data.isoformat(),
            "cohort": cohort if cohorts else None,
            "inputs": _inputs(form, compiled),
        }
        try:
            key = f"form-{form.submission.data}" if form.submission.data else None
            try:
                screening, _ = screenings.screen(payload, created_by=actor(), idempotency_key=key)
            except screenings.KeyReused:
                # Back, edit, submit again: the page's key already stored the earlier values. This is a
                # new screening, not a double submit; it gets a key of its own.
                db.session.rollback()
                screening, _ = screenings.screen(
                    payload, created_by=actor(), idempotency_key=f"form-{uuid.uuid4().hex}"
                )
            return redirect(url_for("screening_pages.result", screening_id=screening.id))
        except ApiError as error:
            db.session.rollback()
            problem = error.message
            for item in error.errors:
                name = (item.get("field") or "").removeprefix("inputs.").removesuffix(".unit")
                entry = re.match(r"^(\w+)\[(\d+)\]\.?(\w*)$", name)
                where = ""
                if entry:  # a list's entry: the line the screener typed it on
                    name, line, part = entry.group(1), int(entry.group(2)) + 1, entry.group(3)
                    where = f"line {line}" + (f" ({'dose' if part == 'value' else part})" if part else "") + ": "
                target = form._fields.get(name)
                if target is not None:
                    target.errors = [*target.errors, f"{where}{item.get('value')!r}: expected {item['expected']}"]
    return render_template(
        "screen_form.html",
        form=form,
        sections=_sections(compiled),
        version=version,
        cohort=cohort,
        cohort_label=cohorts.get(cohort, "all subjects"),
        site_fixed=site is not None,
        problem=problem,
        list_help=LIST_HELP,
    )


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
    criteria = screening.result["criteria"]
    order = {"fail": 0, "unknown": 1, "pass": 2, "not_applicable": 3}
    variables = registry().compiled(screening.version).dictionary.variables
    return render_template(
        "screen_result.html",
        screening=screening,
        result=screening.result,
        missing=[variables[name].label if name in variables else name for name in screening.result["missing"]],
        applicable=sorted((c for c in criteria if c["outcome"] != "not_applicable"), key=lambda c: order[c["outcome"]]),
        not_applicable=[c for c in criteria if c["outcome"] == "not_applicable"],
    )


@bp.get("/log")
@page_roles("screener", "reviewer")
def log():
    try:
        chosen = screenings.parse_filter(request.args)
    except ApiError as error:
        chosen, problem = screenings.LogFilter(), error.errors
    else:
        problem = None
    site = own_site()
    if site is not None:
        chosen = screenings.LogFilter(**{**vars(chosen), "site": site})
    page_number = max(1, int(request.args.get("page", "1"))) if request.args.get("page", "1").isdigit() else 1
    page = screenings.page(chosen, page_number, 50)
    protocols = db.session.execute(select(Protocol.code).order_by(Protocol.code)).scalars().all()
    return render_template(
        "log.html",
        page=page,
        chosen=chosen,
        problem=problem,
        protocols=protocols,
        site_fixed=site is not None,
        query={k: v for k, v in request.args.items() if k != "page"},
    )


@bp.get("/protocols/<code>/attrition")
@page_roles("screener", "reviewer", "writer")
def attrition_page(code: str):
    number = request.args.get("version")
    try:
        version = find_version(code, int(number) if number and number.isdigit() else None)
    except VersionError:
        abort(404)
    bars = attrition(version, own_site())
    return render_template("attrition.html", version=version, bars=bars, svg=chart_svg(bars))


@bp.get("/protocols/<code>/attrition.svg")
@page_roles("screener", "reviewer", "writer")
def attrition_svg(code: str):
    try:
        version = find_version(code)
    except VersionError:
        abort(404)
    return chart_svg(attrition(version, own_site())), 200, {"Content-Type": "image/svg+xml"}
