"""The screening page's FHIR upload: the form comes back prefilled, each value beside its source.

The upload control sits inside the screening form (service/web/templates/fhir_upload.html, included
in screen_form.html) and posts the whole form here, so what the screener already typed is kept.
The prefilled form posts back here too: the values are checked against what was prefilled (a
value the screener changed keeps its source, marked as changed), then the screening page's own
view decides and stores them, and the sources are written with the screening (`sources`, beside
its inputs, outside the decision). Nothing is decided before the screener submits.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from rules.coding import SYSTEM_URIS
from service import fhir, screenings
from service.auth import page_roles
from service.infra.models import Screening, db
from service.infra.registry import registry
from service.web import screening_pages

bp = Blueprint("fhir_pages", __name__)
TOKEN_FIELD = "fhir_prefill"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="fhir-prefill")


def _field_texts(form: Any, name: str) -> dict[str, str]:
    """What the form shows for a variable (value, any unit after it, limits): did the screener change it?"""
    keys = (name, f"{name}_lln", f"{name}_uln")
    return {key: str(form[key].data or "") for key in keys if key in form._fields}


def _prefilled_page(code: str, cohort: str) -> Any:
    """Parse the uploaded bundle and render the screening form prefilled; a bad upload is said beside the control."""
    page = screening_pages.form_page(code, cohort)  # its form holds what the screener typed so far
    compiled, cohorts, sections, form = page.compiled, page.cohorts, page.sections, page.form
    if page.site:
        form.site.data = page.site
    screening_date = form.screening_date.data if isinstance(form.screening_date.data, dt.date) else dt.date.today()
    upload = request.files.get("bundle")
    problem: dict[str, Any] | None = None
    shown: dict[str, Any] = {}
    try:
        data = json.loads(upload.read()) if upload else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        problem = {"message": f"the file is not JSON: {error}", "errors": []}
    if problem is None:
        try:
            prefill = fhir.prefill(compiled, data, screening_date=screening_date, cohort=cohort if cohorts else None)
        except fhir.FhirBundleError as error:
            problem = {"message": error.message, "errors": error.problems}
        else:
            screening_pages._prefill(
                form,
                sections,
                SimpleNamespace(subject_id=form.subject_id.data, site=form.site.data, inputs=prefill.values),
            )
            shown = {
                "sources": {name: source.as_dict() for name, source in prefill.sources.items()},
                "fields": {name: _field_texts(form, name) for name in prefill.sources},
                "lacking": prefill.lacking,
                "notes": prefill.notes,
                "fhir_version": prefill.fhir_version,
                "file": upload.filename if upload else "",
            }
    g.fhir_prefill = {**shown, "problem": problem, "token": _serializer().dumps(shown) if shown else ""}
    return page.render()


def _confirmed(shown: dict[str, Any]) -> dict[str, Any]:
    """The sources of the values submitted as prefilled; a value the screener changed is marked `changed`."""
    sources = {}
    for name, source in shown.get("sources", {}).items():
        before = shown.get("fields", {}).get(name, {})
        now = {key: (request.form.get(key) or "").strip() for key in before}
        if not any(now.values()):
            continue  # cleared by the screener: nothing of the record was submitted
        sources[name] = {**source, "changed": now != {k: v.strip() for k, v in before.items()}}
    return sources


@bp.post("/screen/<code>/<cohort>/fhir")
@page_roles("screener")
def prefilled(code: str, cohort: str):
    if "bundle" in request.files and request.files["bundle"].filename:
        return _prefilled_page(code, cohort)
    try:
        shown = _serializer().loads(request.form.get(TOKEN_FIELD, "")) if request.form.get(TOKEN_FIELD) else {}
    except BadSignature:
        shown = {}  # a tampered token: the values are still the screener's, only without sources
    g.fhir_prefill = {**shown, "problem": None, "token": request.form.get(TOKEN_FIELD, "") if shown else ""}
    db.session.info[screenings.PENDING_SOURCES] = _confirmed(shown)
    try:
        return screening_pages.screen(code, cohort)  # the screening page decides and stores, as it always does
    finally:
        db.session.info.pop(screenings.PENDING_SOURCES, None)


@bp.app_template_global()
def fhir_prefill() -> dict[str, Any] | None:
    """The prefill shown on this page (sources, what is lacking, a bad upload's problems), if any."""
    return g.get("fhir_prefill")


@bp.app_template_filter("coding_name")
def coding_name(code: str | None) -> str:
    """`http://loinc.org|718-7` as people say it: `LOINC 718-7`."""
    if not code or "|" not in code:
        return code or ""
    system, _, value = code.partition("|")
    return f"{SYSTEM_URIS.get(system, system)} {value}"


@bp.app_template_global()
def fhir_labels(screening: Screening) -> dict[str, str]:
    """The dictionary labels of a screening's version, to name the variables its sources are for."""
    variables = registry().compiled(screening.version).dictionary.variables
    return {name: variable.label for name, variable in variables.items()}
