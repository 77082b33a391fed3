"""Test cases as forms: one input per variable of the version's dictionary, as on the screening form.

The form is made from the data dictionary (service.web.screening_pages.form_class) plus what a test
case expects: the decision, each criterion's outcome and the variables reported missing, each
left blank when the case does not check it. On save the case is checked against the version
(rules.test_cases.check: the same reading publishing uses), each problem shown on its field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.helpers import get_redirect_target
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import Field, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from admin.views import VersionPartView
from rules import test_cases
from rules.compiler import CompiledProtocol
from rules.errors import EligoError
from rules.protocol import REFUSED, TestCaseDef
from rules.relevance import input_sections
from service.infra.models import DRAFT, ProtocolVersion, TestCase, db
from service.infra.registry import registry
from service.web.screening_pages import Sections, _inputs, _list_text, _place_errors, form_class

EXPECT_CHOICES = [
    SelectChoice("eligible"),
    SelectChoice("not_eligible", "not eligible"),
    SelectChoice("incomplete"),
    SelectChoice(REFUSED, "refused as input"),
]
OUTCOME_CHOICES = [
    SelectChoice("", "— not checked"),
    *(SelectChoice(o, o.replace("_", " ")) for o in test_cases.OUTCOME_VALUES),
]
_PLAIN_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")


def case_form(compiled: CompiledProtocol, extra_names: tuple[str, ...] = ()) -> tuple[type[FlaskForm], Sections]:
    """The form class for a version's test cases, and the dictionary's input sections it shows.

    `extra_names`: names a stored case says are missing or refused that the dictionary no longer
    offers, kept as choices so the form shows them (and the check names them) rather than losing them."""
    sections = input_sections(compiled.dictionary)
    definition = compiled.definition
    names = [v.name for _, variables in sections for v in variables]
    names += [n for n in extra_names if n not in names]

    class TestCaseForm(form_class(compiled, sections)):  # type: ignore[misc]
        subject_id = None  # a screening's envelope: a test case has a name instead
        site = None
        submission = None
        name = StringField("Name", validators=[DataRequired(), Length(max=300)])
        expect = SelectField("Expected decision", choices=EXPECT_CHOICES, default="eligible")
        missing = SelectMultipleField(
            "Expected missing", choices=[SelectChoice(n) for n in names], description="Left blank: not checked."
        )
        refused = SelectMultipleField(
            "Refused fields",
            choices=[SelectChoice(n) for n in ["cohort", "screening_date", *names]],
            description="Only for a case expecting its input to be refused: the fields refused.",
        )

    if definition.cohorts:
        choices = [SelectChoice(c.code, f"{c.code}: {c.label}") for c in definition.cohorts]
        TestCaseForm.cohort = SelectField("Cohort", choices=choices, validators=[DataRequired()])
    for index, criterion in enumerate(definition.criteria):
        setattr(TestCaseForm, f"outcome_{index}", SelectField(criterion.code, choices=OUTCOME_CHOICES, default=""))
    return TestCaseForm, sections


def outcome_fields(form: FlaskForm, compiled: CompiledProtocol) -> list[tuple[str, Field]]:
    return [(c.code, form[f"outcome_{i}"]) for i, c in enumerate(compiled.definition.criteria)]


def _typed(value: Any) -> Any:
    """A form's text as a protocol file holds it: `40` a number, `yes` true; anything else as typed."""
    if isinstance(value, dict):
        return {k: _typed(v) if k != "unit" else v for k, v in value.items()}
    if not isinstance(value, str):
        return value
    if _PLAIN_NUMBER.match(value):
        return float(value) if "." in value else int(value)
    return {"yes": True, "no": False}.get(value, value)


def definition_of(form: FlaskForm, compiled: CompiledProtocol, sections: Sections) -> TestCaseDef:
    """The test case the form describes: its subject built as the screening form builds one."""
    subject: dict[str, Any] = {}
    if "cohort" in form:
        subject["cohort"] = form.cohort.data
    if form.screening_date.data:
        subject["screening_date"] = form.screening_date.data.isoformat()
    subject.update({name: _typed(value) for name, value in _inputs(form, sections).items()})
    expect = form.expect.data
    return TestCaseDef(
        name=form.name.data.strip(),
        subject=subject,
        expect=expect,
        outcomes={code: field.data for code, field in outcome_fields(form, compiled) if field.data},
        # sorted, as decisions report them (rules.explain), so the comparison is of the names alone
        missing=tuple(sorted(form.missing.data)) if form.missing.data and expect != REFUSED else None,
        refused=tuple(form.refused.data or ()) if expect == REFUSED else (),
    )


def fill(form: FlaskForm, compiled: CompiledProtocol, sections: Sections, case: TestCase) -> None:
    """The form as a stored case left it."""
    form.name.data, form.expect.data = case.name, case.expect
    subject = dict(case.subject or {})
    if "cohort" in form:
        form.cohort.data = subject.get("cohort")
    try:
        form.screening_date.data = dt.date.fromisoformat(str(subject.get("screening_date")))
    except ValueError:
        form.screening_date.data = None
    for _, variables in sections:
        for variable in variables:
            name = variable.name
            value = subject.get(name)
            if variable.type == "list":
                form[name].data = _list_text(value) if value is not None else ""
                continue
            if isinstance(value, dict):
                unit = value.get("unit") if value.get("unit") != variable.unit else None
                for limit in ("lln", "uln"):
                    if value.get(limit) is not None and f"{name}_{limit}" in form:
                        form[f"{name}_{limit}"].data = str(value[limit])
                value = value.get("value")
                if value is not None and unit:  # another unit is typed after the number, as on the screening form
                    value = f"{value} {unit}"
            for limit in ("lln", "uln"):
                if subject.get(f"{name}_{limit}") is not None and f"{name}_{limit}" in form:
                    form[f"{name}_{limit}"].data = str(subject[f"{name}_{limit}"])
            if isinstance(value, bool):
                value = "yes" if value else "no"
            form[name].data = "" if value is None else str(value)
    for code, field in outcome_fields(form, compiled):
        field.data = (case.outcomes or {}).get(code, "")
    form.missing.data = list(case.missing or [])
    form.refused.data = list(case.refused or [])


def place(form: FlaskForm, compiled: CompiledProtocol, problems: list[test_cases.CaseProblem]) -> list[str]:
    """Each problem on the field it is about; those with no field of their own are returned."""
    outcomes = dict(outcome_fields(form, compiled))
    subject_errors = []
    for problem in problems:
        message = f"{problem.value!r}: expected {problem.expected}"
        code = problem.field.removeprefix("outcome ")
        if problem.field.startswith("outcome ") and code in outcomes:
            outcomes[code].errors = [*outcomes[code].errors, message]
        elif problem.field in ("expect", "missing", "refused", "name"):
            form[problem.field].errors = [*form[problem.field].errors, message]
        else:
            subject_errors.append({"field": problem.field, "value": problem.value, "expected": problem.expected})
    return _place_errors(form, subject_errors)


class TestCaseView(VersionPartView):
    """Test cases: listed as rows, created and edited through a form made from the version's dictionary."""

    __test__ = False  # not a pytest class
    column_list = ("version", "name", "expect")
    column_searchable_list = ("name",)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self) -> Any:
        version = db.session.get(ProtocolVersion, request.values.get("version_id", type=int) or 0)
        if version is None:
            drafts = db.session.execute(select(ProtocolVersion).where(ProtocolVersion.status == DRAFT)).scalars()
            return self.render("admin_eligo/test_case_pick.html", drafts=list(drafts))
        return self._page(version, None)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self) -> Any:
        case = db.session.get(TestCase, request.args.get("id", type=int) or 0)
        if case is None:
            abort(404, description="no such test case")
        return self._page(case.version, case)

    def _page(self, version: ProtocolVersion, case: TestCase | None) -> Any:
        return_url = get_redirect_target() or self.get_url(".index_view")
        try:
            compiled = registry().compiled(version)
        except EligoError as error:
            flash(f"The version's dictionary or criteria have problems to fix before test cases: {error}", "error")
            return redirect(return_url)
        stored = tuple(case.missing or ()) + tuple(case.refused or ()) if case else ()
        form_type, sections = case_form(compiled, stored)
        form = form_type()
        if request.method == "GET" and case is not None:
            fill(form, compiled, sections, case)
        unplaced: list[str] | None = []
        if form.validate_on_submit():
            unplaced = self._save(form, compiled, sections, version, case)
            if unplaced is None:
                return redirect(return_url)
        return self.render(
            "admin_eligo/test_case_form.html",
            form=form,
            version=version,
            case=case,
            sections=sections,
            outcomes=outcome_fields(form, compiled),
            unplaced=unplaced,
            invalid=bool(form.errors) or bool(unplaced),
            return_url=return_url,
            editable=version.status == DRAFT,
        )

    def _save(
        self,
        form: FlaskForm,
        compiled: CompiledProtocol,
        sections: Sections,
        version: ProtocolVersion,
        case: TestCase | None,
    ) -> list[str] | None:
        """Store the case if it checks; else the problems not shown on a field (None: saved)."""
        if version.status != DRAFT:
            return [f"version {version.number} is {version.status} and cannot change: start an amendment"]
        definition = definition_of(form, compiled, sections)
        problems = test_cases.check(compiled, definition)
        if definition.expect == REFUSED and not definition.refused:
            problems.append(test_cases.CaseProblem("refused", [], "the fields the input is refused on"))
        taken = {t.name for t in version.test_cases if t is not case}
        if definition.name in taken:
            problems.append(test_cases.CaseProblem("name", definition.name, "a name no other test case has"))
        if problems:
            return place(form, compiled, problems)
        if case is None:
            position = max((t.position for t in version.test_cases), default=-1) + 1
            case = TestCase(version=version, position=position)
            db.session.add(case)
        fresh = TestCase.from_definition(definition, case.position)
        for column in ("name", "subject", "expect", "outcomes", "missing", "refused"):
            setattr(case, column, getattr(fresh, column))
        db.session.commit()
        flash(f"Test case “{case.name}” saved.")
        return None
