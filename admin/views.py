"""Declarative admin views; behaviour lives in the service layer, shared with the API."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from flask import abort, flash, g, jsonify, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import FloatField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional

import rules
from admin import rule_check
from admin.access import RoleAccess
from admin.fields import CodeListField, CodingField
from admin.review import compared, review_context
from admin.validators import (
    PASSWORD_MIN,
    code_system,
    draft_only,
    identifier,
    known_cohorts,
    known_unit,
    password_policy,
    screener_site,
    valid_coding,
    valid_condition,
    valid_rule,
    value_set_codes,
    variable_type,
)
from rules import lists
from rules.errors import EligoError, ProtocolError, SubjectInputErrors
from rules.protocol import VariableDef
from service import amendments_rebase, authoring, versions
from service.auth import has_role, hash_token, sign
from service.errors import DomainError
from service.infra.engine import engine
from service.infra.models import DRAFT, ImmutableVersionError, ProtocolVersion, db
from service.infra.registry import registry

MAX_PAGE = 1_000_000


class EligoIndexView(RoleAccess, AdminIndexView):
    roles = ("writer", "reviewer")

    @expose("/")
    def index(self) -> str:
        drafts = db.session.execute(select(ProtocolVersion).where(ProtocolVersion.status == DRAFT)).scalars().all()
        stale = {d.id: versions.StaleDraft(d, since) for d in drafts if (since := versions.published_since(d))}
        return self.render("admin_eligo/index.html", drafts=drafts, stale=stale)


class EligoModelView(RoleAccess, ModelView):
    """Common ground: refusals shown as messages rather than errors (CSRF: Flask-WTF, app-wide)."""

    page_size = 50
    can_view_details = True

    def validate_form(self, form: Any) -> bool:
        """Validate, and say so when a field the page does not show refused the form (e.g. an expired token)."""
        valid = super().validate_form(form)
        if not valid and request.method == "POST":
            for name, errors in form.errors.items():
                field = form._fields.get(name)
                if field is not None and field.type in ("CSRFTokenField", "HiddenField"):
                    reason = "; ".join(map(str, errors))
                    flash(f"The form could not be accepted ({name}: {reason}); reload the page and try again.", "error")
        return valid

    def _get_list_extra_args(self) -> Any:
        """List pages: a page number beyond any list is a 400 naming it, not a database overflow."""
        raw = request.args.get("page")
        if raw is not None and (not raw.isdigit() or int(raw) > MAX_PAGE):
            abort(400, description=f"`page` must be a page number from 0 to {MAX_PAGE:,}, not {raw[:40]!r}")
        return super()._get_list_extra_args()

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, ImmutableVersionError | EligoError):
            flash(f"Not saved: {exc}", "error")
            return True
        return super().handle_view_exception(exc)


def _version_label(view: Any, context: Any, model: Any, name: str) -> str:
    version = model.version
    return f"{version.protocol.code} v{version.number} ({version.status})"


class VersionPartView(EligoModelView):
    """Rows that belong to a version: editable only while the version is a draft."""

    roles = ("writer",)
    column_formatters = {"version": _version_label}
    column_filters: tuple[str, ...] = ("version.number", "version.status")
    form_excluded_columns = ("position",)

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        version = model.version
        if version is not None and version.status != DRAFT:
            raise ImmutableVersionError(f"version {version.number} is {version.status}; start an amendment")
        if is_created and version is not None:
            siblings = getattr(version, type(model).__tablename__)
            model.position = max((s.position for s in siblings if s is not model), default=-1) + 1

    def create_form(self, obj: Any = None) -> Any:
        """A create form opened from a version's workbench (`?version_id=`) starts on that version."""
        form = super().create_form(obj)
        version_id = request.args.get("version_id", type=int)
        if request.method == "GET" and version_id and hasattr(form, "version"):
            form.version.data = db.session.get(ProtocolVersion, version_id)
        return form

    def get_query(self):
        query = super().get_query()
        number = request.args.get("version_number")
        if number and number.isdigit():
            query = query.join(ProtocolVersion).filter(ProtocolVersion.number == int(number))
        return query


class CriterionView(VersionPartView):
    column_list = ("version", "code", "kind", "cohorts", "rule", "rationale")
    column_searchable_list = ("code", "text", "rule")
    column_filters = ("version.number", "version.status", "kind", "code")
    column_default_sort = "position"
    form_columns = ("version", "code", "kind", "cohorts", "section", "text", "rule", "notes", "rationale")
    form_rules = form_columns  # `kind` (replaced in scaffold_form) before the rule it decides the reading of
    form_overrides = {
        "rule": TextAreaField,
        "text": TextAreaField,
        "notes": TextAreaField,
        "rationale": TextAreaField,
        "cohorts": CodeListField,
    }
    form_args = {
        "kind": {"validators": [draft_only]},
        "cohorts": {"validators": [known_cohorts], "description": "Cohort codes, e.g. SSc; empty: every cohort."},
        "rule": {
            "validators": [valid_rule],
            "description": "e.g. anc >= 1 x10^9/L and not (csf_received and"
            " last_csf_date within 2 weeks before screening)",
        },
        "rationale": {"description": "Why this amendment changes the criterion (shown in the summary of changes)."},
    }
    form_widget_args = {"rule": {"rows": 4, "spellcheck": "false"}, "text": {"rows": 4}}

    create_template = "admin_eligo/rule_create.html"
    edit_template = "admin_eligo/rule_edit.html"

    def scaffold_form(self):
        form = super().scaffold_form()
        form.kind = SelectField(
            "Kind", choices=[SelectChoice("inclusion"), SelectChoice("exclusion")], validators=[draft_only]
        )
        return form

    @expose("/rule-check/", methods=("POST",))
    def rule_check(self) -> Any:
        """The live editor's check (static/rule_editor.js): every problem and the preview, before saving."""
        try:
            version_id, kind, text = rule_check.read_request(request.get_json(silent=True))
        except rule_check.CheckRequestError as error:
            return jsonify(
                error={"message": "the rule check needs a version, a kind and a text", "errors": [error.as_dict()]}
            ), 400
        version = db.session.get(ProtocolVersion, version_id)
        if version is None:
            return jsonify(error={"message": f"no protocol version {version_id}", "errors": []}), 404
        return jsonify(rule_check.check(version, kind, text))

    @expose("/rule-words/")
    def rule_words(self) -> Any:
        """What the editor completes: the version's variable names, value sets and units."""
        version = db.session.get(ProtocolVersion, request.args.get("version_id", type=int) or 0)
        if version is None:
            return jsonify(error={"message": "no such protocol version", "errors": []}), 404
        return jsonify(rule_check.vocabulary(version))


class VariableView(VersionPartView):
    create_template = "admin_eligo/rule_create.html"  # a named condition's `condition` is edited live too
    edit_template = "admin_eligo/rule_edit.html"

    column_list = ("version", "name", "label", "type", "unit", "units", "minimum", "maximum", "uln", "formula")
    column_searchable_list = ("name", "label", "section")
    column_filters = ("version.number", "version.status", "type", "section")
    column_default_sort = "position"
    form_columns = ("version", *(f.name for f in fields(VariableDef)))
    # Float columns, said explicitly: SQLAlchemy 2.1's Float is no Numeric, and Flask-Admin left them out.
    form_overrides = {
        "units": CodeListField,
        "codes": CodeListField,
        "coding": CodingField,
        "minimum": FloatField,
        "maximum": FloatField,
    }
    form_args = {
        "type": {"validators": [variable_type, draft_only]},
        "minimum": {"validators": [Optional()], "description": "Plausible minimum, in the unit above"},
        "maximum": {"validators": [Optional()], "description": "Plausible maximum, in the unit above"},
        "unit": {"validators": [known_unit]},
        "units": {
            "validators": [known_unit],
            "description": "Accepted units besides the canonical one, e.g. /µL, 10^9/L",
        },
        "codes": {"description": "For a code variable: its codes, e.g. female, male"},
        "formula": {
            "description": "A derived number: e.g. weight / (height in m)^2, ckd_epi_2021(creatinine, age, sex)"
        },
        "condition": {
            "validators": [valid_condition],
            "description": "A yes/no several criteria reuse, e.g. hbsag_positive or hbv_dna >= 20 IU/mL",
        },
        "system": {"description": "For a list: the code system of its entries, e.g. ATC, ICD-10-CM"},
        "coding": {
            "validators": [valid_coding],
            "description": "The codes an EHR records it by, one system|code a line, e.g. http://loinc.org|718-7;"
            " a code ending in * takes its hierarchy (http://www.whocc.no/atc|L04*). Used to prefill from FHIR.",
        },
    }

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        super().on_model_change(form, model, is_created)
        from rules.dictionary import DataDictionary

        DataDictionary(model.version.to_definition())  # refuses a dictionary that does not hold together


class ValueSetView(VersionPartView):
    """Value sets are edited like criteria: rows of a draft version, checked against the dictionary on save."""

    column_list = ("version", "name", "label", "system", "codes", "half_life")
    column_searchable_list = ("name", "label")
    column_filters = ("version.number", "version.status", "system", "name")
    column_default_sort = "position"
    form_columns = ("version", "name", "label", "system", "codes", "half_life", "help")
    form_overrides = {"codes": CodeListField, "help": TextAreaField}
    form_args = {
        "name": {"validators": [draft_only], "description": "As rules name it: any medications in sglt2_inhibitors"},
        "system": {"validators": [code_system], "description": ", ".join(lists.SYSTEMS)},
        "codes": {
            "validators": [value_set_codes],
            "description": "Codes of that system, comma-separated; a code ending in * takes its whole hierarchy,"
            " e.g. A10BK* (every SGLT2 inhibitor), E11*",
        },
        "half_life": {"description": "For washouts in half-lives, e.g. 13 h or 2 days"},
    }

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        super().on_model_change(form, model, is_created)
        from rules.dictionary import DataDictionary

        DataDictionary(model.version.to_definition())  # refuses a value set that does not check


class CohortView(VersionPartView):
    column_list = ("version", "code", "label")
    form_columns = ("version", "code", "label")
    form_args = {"code": {"validators": [identifier, draft_only]}}


class ProtocolVersionView(EligoModelView):
    roles = ("writer", "reviewer")
    can_create = False
    can_edit = False
    can_delete = False
    column_list = (
        "protocol.code",
        "number",
        "status",
        "based_on",
        "content_hash",
        "published_at",
        "published_by",
        "publish_reason",
    )
    column_labels = {
        "protocol.code": "Protocol",
        "number": "Version",
        "based_on": "Amended from",
        "published_by": "Signed by",
        "publish_reason": "Reason signed",
    }
    column_filters = ("status", "protocol.code")
    column_default_sort = [("protocol_id", False), ("number", False)]
    column_formatters = {
        "content_hash": lambda v, c, m, n: (m.content_hash or "")[:12],
        "based_on": lambda v, c, m, n: f"v{m.based_on.number}" if m.based_on else "",
        "number": lambda v, c, m, n: Markup(
            '{number} <a href="{criteria}">criteria</a> · <a href="{dictionary}">dictionary</a>'
            ' · <a href="{value_sets}">value sets</a>{tryit}'
        ).format(
            number=m.number,
            criteria=url_for("criteria.index_view", version_number=m.number),
            dictionary=url_for("variables.index_view", version_number=m.number),
            value_sets=url_for("valuesets.index_view", version_number=m.number),
            tryit=Markup(
                ' · <a href="{}">try it</a> · <a href="{}">review</a> · <a href="{}">workbench</a>'
                ' · <a href="{}">run tests</a> · <a href="{}" download>YAML</a>'
            ).format(
                url_for("tryit.index", version_id=m.id),
                url_for("review.version", version_id=m.id),
                url_for("workbench.version", version_id=m.id),
                url_for("workbench.tests", version_id=m.id),
                url_for("workbench.download", version_id=m.id, fmt="yaml"),
            ),
        ),
    }

    @action("amend", "Start amendment", "Start a draft amendment from the selected published version?")
    def amend(self, ids: list[str]) -> None:
        if not has_role(current_user, "writer"):
            flash("Only writers start amendments.", "error")
            return
        for version in self._selected(ids):
            try:
                draft = versions.amend(version.protocol.code, version.number)
                db.session.commit()
                flash(f"Draft version {draft.number} of {version.protocol.code} started from version {version.number}.")
            except versions.VersionError as error:
                db.session.rollback()
                flash(error.message, "error")

    @action("rebase", "Rebase onto current", "Merge what was published since into the selected drafts?")
    def rebase(self, ids: list[str]) -> None:
        """A stale draft takes in what was published since its base; conflicts are listed, the draft keeps its own."""
        if not has_role(current_user, "writer"):
            flash("Only writers rebase drafts.", "error")
            return
        for version in self._selected(ids):
            try:
                result = amendments_rebase.rebase(version)
                db.session.commit()
            except versions.VersionError as error:
                db.session.rollback()
                problems = "; ".join(getattr(error, "reasons", []))
                flash(f"{version.protocol.code} version {version.number}: {error} {problems}".strip(), "error")
                continue
            _flash_rebased(version, result)

    @action("publish", "Publish", "Run the test cases of the selected draft and publish it?")
    def publish(self, ids: list[str]) -> Any:
        """Publishing is signed, so the action leads to the signing page of the (first) selected version."""
        if not has_role(current_user, "reviewer"):
            flash("Only reviewers publish.", "error")
            return None
        if len(ids) != 1:
            flash("Select one version to publish: each publication is signed on its own.", "error")
            return None
        return redirect(url_for("sign.index", version_id=int(ids[0])))

    def _selected(self, ids: list[str]) -> list[ProtocolVersion]:
        return [v for i in ids if (v := db.session.get(ProtocolVersion, int(i))) is not None]


class ProtocolView(EligoModelView):
    """Protocols: created here from scratch (with an empty first draft), or uploaded as a protocol file."""

    roles = ("writer", "reviewer")
    can_create = True
    can_edit = False
    can_delete = False
    column_list = ("code", "title", "versions", "created_at")
    column_searchable_list = ("code", "title")
    column_formatters = {
        "versions": lambda v, c, m, n: Markup(", ").join(
            Markup('<a href="{}">v{} {}</a>').format(url_for("workbench.version", version_id=x.id), x.number, x.status)
            for x in m.versions
        )
    }
    form_columns = ("code", "title", "description", "source")  # the last two: extra fields, for the draft
    form_args = {
        "code": {
            "label": "Code",
            "validators": [identifier],
            "description": "The trial's registry id, e.g. NCT07193667: it names the protocol in URLs and files.",
        },
        "title": {"description": "The trial's title, as registered."},
    }
    form_extra_fields = {
        "description": TextAreaField("Description", description="What the trial is about, for screeners."),
        "source": TextAreaField("Source", description="Where the criteria come from, e.g. the registry record."),
    }

    def create_model(self, form: Any) -> Any:
        """A protocol and its first draft, in one transaction; each refusal shown on its field."""
        if not has_role(current_user, "writer"):
            flash("Only writers create protocols.", "error")
            return False
        try:
            draft = authoring.new_protocol(form.code.data, form.title.data, form.description.data, form.source.data)
            db.session.commit()
        except ProtocolError as error:
            db.session.rollback()
            for problem in error.problems:
                name, _, message = problem.partition(": ")
                field = getattr(form, name, None) or form.code
                field.errors = [*field.errors, message or problem]
            return False
        return draft.protocol

    def get_save_return_url(self, model: Any, is_created: bool = False) -> str:
        return url_for("workbench.version", version_id=model.versions[0].id)


OUTCOME_ORDER = {"fail": 0, "unknown": 1, "pass": 2, "not_applicable": 3}


class TryItView(RoleAccess, BaseView):
    """Decide a subject (a test case, or JSON typed in) under a draft, without publishing or storing.

    The answer reads as the screening page's (failures first, the same sentences), with the
    current published version's answer for the same subject beside it, criterion by criterion."""

    roles = ("writer", "reviewer")

    @expose("/", methods=("GET", "POST"))
    def index(self) -> str:
        version_id = request.values.get("version_id", type=int)
        version = db.session.get(ProtocolVersion, version_id) if version_id else None
        if version is None:
            candidates = db.session.execute(select(ProtocolVersion).order_by(ProtocolVersion.id)).scalars().all()
            return self.render("admin_eligo/try_pick.html", versions=candidates)
        subject_text = request.form.get("subject", "")
        case_name = request.form.get("case", "")
        current = version.protocol.current()
        beside = current if current is not None and current.id != version.id else None
        decision, problem, published, published_problem = None, None, None, None
        if request.method == "POST":
            try:
                if case_name:
                    case = next(t for t in version.test_cases if t.name == case_name)
                    subject_text = json.dumps(case.subject, indent=1)
                subject = json.loads(subject_text or "{}")
                decision = rules.decide(registry().compiled(version), subject, engine(version))
            except json.JSONDecodeError as error:
                problem = f"The subject is not valid JSON: {error}"
            except StopIteration:
                problem = f"No test case named {case_name[:80]!r}"
            except EligoError as error:
                problem = _said(error)
            if decision is not None and beside is not None:
                try:
                    published = rules.decide(registry().compiled(beside), subject, engine(beside))
                except EligoError as error:
                    published_problem = _said(error)
        return self.render(
            "admin_eligo/try.html",
            version=version,
            subject=subject_text,
            cases=version.test_cases,
            decision=decision,
            rows=_side_by_side(decision, published) if decision else [],
            beside=beside,
            published=published,
            published_problem=published_problem,
            problem=problem,
        )


def _said(error: EligoError) -> str:
    if isinstance(error, SubjectInputErrors):
        return "; ".join(str(e) for e in error.errors)
    return str(error)


def _side_by_side(decision: Any, published: Any) -> list[tuple[Any, Any]]:
    """Each criterion of the draft's answer, failures first, with the published answer's same criterion."""
    theirs = {c.code: c for c in published.criteria} if published else {}
    mine = sorted(decision.criteria, key=lambda c: OUTCOME_ORDER.get(c.outcome, 9))
    rows = [(c, theirs.get(c.code)) for c in mine]
    gone = [(None, c) for code, c in theirs.items() if code not in {m.code for m in mine}]
    return rows + gone


class SignForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired()])
    reason = TextAreaField("Reason for approving", validators=[DataRequired()])


class SignView(RoleAccess, BaseView):
    """Publish a draft with an electronic signature: the reviewer re-enters their password and gives a reason."""

    roles = ("reviewer",)

    def is_visible(self) -> bool:
        return False

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        version = db.session.get(ProtocolVersion, request.values.get("version_id", type=int) or 0)
        if version is None or version.status != DRAFT:
            flash("Only a draft version can be published.", "error")
            return redirect(url_for("versions.index_view"))
        form = SignForm()
        stale = versions.published_since(version)
        if stale:  # publishing would undo what was published since: said before anyone types a password
            return self.render(
                "admin_eligo/sign.html",
                version=version,
                form=None,
                stale=versions.StaleDraft(version, stale),
                **review_context(compared(version, None), version),
            )
        if form.validate_on_submit():
            try:
                signature = sign(current_user, form.password.data, form.reason.data)
                versions.publish(version, signature)
                db.session.commit()
                short_hash = (version.content_hash or "")[:12]
                flash(
                    f"{version.protocol.code} version {version.number} published (hash {short_hash}), "
                    f"signed by {signature.signer}."
                )
                return redirect(url_for("versions.index_view"))
            except versions.VersionError as refused:  # e.g. another version published meanwhile
                db.session.rollback()
                flash(f"Not published: {refused.message}", "error")
            except versions.PublishRefused as refused:
                db.session.rollback()
                lines = [
                    f"{f.name}: expected {json.dumps(f.expected)}, got {json.dumps(f.got)}" for f in refused.failures
                ]
                flash(
                    Markup("Not published: {} test case(s) failed:<ul>{}</ul>").format(
                        len(lines), Markup("").join(Markup("<li>{}</li>").format(line) for line in lines)
                    ),
                    "error",
                )
            except DomainError as refused:  # the signature: a wrong password, no reason
                db.session.rollback()
                form.password.errors = [*form.password.errors, refused.message]
        return self.render(
            "admin_eligo/sign.html",
            version=version,
            form=form,
            stale=None,
            tests=_test_results(version),
            **review_context(compared(version, None), version),
        )


def _test_results(version: ProtocolVersion) -> dict[str, Any]:
    """The draft's test cases run now, as publishing will run them: what the signer is about to rely on."""
    try:
        failures = versions.run_test_cases(version.to_definition())
    except EligoError as error:
        return {"total": len(version.test_cases), "failures": [], "problem": str(error)}
    return {"total": len(version.test_cases), "failures": failures, "problem": None}


class RebaseView(RoleAccess, BaseView):
    """Rebase a stale draft onto the current version (a POST from the signing page or the drafts list)."""

    roles = ("writer",)

    def is_visible(self) -> bool:
        return False

    @expose("/", methods=("POST",))
    def index(self) -> Any:
        version = db.session.get(ProtocolVersion, request.form.get("version_id", type=int) or 0)
        if version is None:
            abort(404, description="no such version")
        try:
            result = amendments_rebase.rebase(version)
            db.session.commit()
        except amendments_rebase.RebaseRefused as refused:
            db.session.rollback()
            flash(
                Markup("{}:<ul>{}</ul>").format(
                    refused.message, Markup("").join(Markup("<li>{}</li>").format(p) for p in refused.reasons)
                ),
                "error",
            )
            return redirect(url_for("admin.index"))
        except versions.VersionError as refused:
            db.session.rollback()
            flash(refused.message, "error")
            return redirect(url_for("admin.index"))
        _flash_rebased(version, result)
        return redirect(url_for("admin.index"))


def _flash_rebased(version: ProtocolVersion, result: amendments_rebase.MergeResult) -> None:
    assert version.based_on is not None  # a rebased draft is based on the current version
    taken = ", ".join(result.taken) or "nothing"
    flash(
        f"{version.protocol.code} version {version.number} is now based on version {version.based_on.number};"
        f" taken from it: {taken}."
    )
    if result.conflicts:
        flash(
            Markup("{} conflict(s): the draft kept its own version of each; check them:<ul>{}</ul>").format(
                len(result.conflicts),
                Markup("").join(Markup("<li>{}</li>").format(c.sentence()) for c in result.conflicts),
            ),
            "error",
        )


class AuditView(EligoModelView):
    roles = ("writer", "reviewer")
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("at", "actor", "action", "entity", "summary", "before", "after")
    column_filters = ("actor", "action", "entity", "at")
    column_searchable_list = ("summary",)
    column_default_sort = ("id", True)
    column_formatters = {
        "before": lambda v, c, m, n: _changes(m.before),
        "after": lambda v, c, m, n: _changes(m.after),
    }


def _changes(values: dict[str, Any] | None) -> Markup:
    if not values:
        return Markup("")
    shown = list(values.items())[:8]
    return Markup("<br>").join(Markup("<code>{}</code>: {}").format(k, escape(str(v))[:160]) for k, v in shown)


class UserView(EligoModelView):
    """Accounts: create, change role and site, deactivate, reset a password, rotate an API token, unlock.

    A new API token is shown once, on the page that answers the request, never flashed: a flash
    message travels in the (signed, not encrypted) session cookie.
    """

    roles = ("admin",)
    can_delete = False  # accounts are named in the audit trail and on signatures: deactivate instead
    column_list = ("username", "role", "site", "active", "locked_at", "failed_logins", "created_at")
    column_labels = {"locked_at": "Locked since", "failed_logins": "Failed sign-ins"}
    column_searchable_list = ("username",)
    column_filters = ("role", "site", "active")
    form_columns = ("username", "role", "site", "active", "password")
    form_rules = form_columns  # in this order, the site (replaced in scaffold_form) included
    form_overrides = {"role": SelectField}
    form_args = {
        "username": {"validators": [DataRequired()]},
        "role": {"choices": [SelectChoice(r) for r in ("writer", "reviewer", "screener", "admin")]},
    }
    form_extra_fields = {
        "password": PasswordField(
            "New password",
            validators=[password_policy],
            description=f"At least {PASSWORD_MIN} characters, not containing the username."
            " Editing an account: leave empty to keep its password.",
            render_kw={"autocomplete": "new-password"},
        )
    }

    def scaffold_form(self):
        form = super().scaffold_form()
        # Not the column's own field: its Optional() validator would stop the site check on an empty site.
        form.site = StringField(
            "Site",
            validators=[screener_site],
            description="A screener's site: they screen for it and see its log only (required for screeners).",
        )
        return form

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        from werkzeug.security import generate_password_hash

        from service.auth import end_sessions

        model.site = (model.site or "").strip() or None
        if model.role == "screener" and model.site is None:
            raise EligoError("a screener needs a site: they screen for it and see its log only")
        if not is_created and not model.active and model.id == current_user.id:
            raise EligoError("you cannot deactivate your own account: another admin can")
        if form.password.data:
            model.password_hash = generate_password_hash(form.password.data)
            if not is_created:
                end_sessions(model)  # a new password signs the account out everywhere
                _audit_credential(model, "password_reset", "password replaced by an admin")
        if not is_created and not model.active:
            end_sessions(model)
        if is_created and not model.token_hash:
            g.new_tokens = [(model.username, _rotate(model))]

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self) -> Any:
        """Saved: the new account's API token is shown on the page that answers, instead of the redirect."""
        response = super().create_view()
        tokens = g.pop("new_tokens", None)
        if tokens and response.status_code == 302:
            return self.render("admin_eligo/user_tokens.html", tokens=tokens, created=True)
        return response

    @action("rotate_token", "Rotate API token", "Replace the selected accounts' API tokens? The old ones stop working.")
    def rotate_token(self, ids: list[str]) -> Any:
        """The new token is shown on the page that answers, once; the old token stops working at once."""
        from service.infra.models import User

        tokens = []
        for user in (db.session.get(User, int(i)) for i in ids):
            if user is not None:
                tokens.append((user.username, _rotate(user)))
                _audit_credential(user, "token_rotated", "API token replaced; the old one no longer works")
        db.session.commit()
        return self.render("admin_eligo/user_tokens.html", tokens=tokens, created=False)

    @action("deactivate", "Deactivate", "Deactivate the selected accounts? No more sign-in, no more API token.")
    def deactivate(self, ids: list[str]) -> None:
        from service.auth import end_sessions
        from service.infra.models import User

        for user in (db.session.get(User, int(i)) for i in ids):
            if user is None:
                continue
            if user.id == current_user.id:
                flash("You cannot deactivate your own account: another admin can.", "error")
                continue
            user.active = False
            end_sessions(user)
            flash(f"{user.username} deactivated: no sign-in, no API token.")
        db.session.commit()

    @action("unlock", "Unlock", "Unlock the selected accounts (after too many failed sign-ins)?")
    def unlock(self, ids: list[str]) -> None:
        from service.infra.models import User

        for user in (db.session.get(User, int(i)) for i in ids):
            if user is not None:
                user.locked_at, user.failed_logins = None, 0
                flash(f"{user.username} unlocked.")
        db.session.commit()


def _audit_credential(user: Any, action: str, what: str) -> None:
    """A credential changed: an audit entry naming the account, never the secret (the audit listener
    leaves hashes out, so without this a reset or a rotation would leave no trace at all)."""
    from service.auth import actor
    from service.infra.models import AuditEntry, utcnow

    db.session.add(
        AuditEntry(
            at=utcnow(),
            actor=actor(),
            action=action,
            entity="users",
            entity_id=user.id,
            summary=f"{user.username}: {what}",
            before=None,
            after=None,
        )
    )


def _rotate(user: Any) -> str:
    """A new API token for the account: only its hash is kept; the token itself is returned to show once."""
    import secrets

    token = secrets.token_urlsafe(24)
    user.token_hash = hash_token(token)
    return token
