"""The protocol writer's workbench: one page per version with everything it holds, in the protocol's order.

From it a writer adds cohorts, variables, value sets, criteria and test cases (the admin's forms,
opened on this version and returning here), moves criteria up and down, runs all test cases,
tries subjects and downloads the version as a protocol file. Uploading a protocol file is a view
of its own. The work itself is service/authoring.py's, shared with the API and the CLI.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup
from sqlalchemy import select

from admin.access import RoleAccess
from rules.errors import EligoError, ProtocolError
from service import authoring
from service.auth import actor, has_role
from service.infra.models import (
    DRAFT,
    Cohort,
    Criterion,
    ImmutableVersionError,
    ProtocolVersion,
    ValueSet,
    Variable,
    db,
)

PARTS = {"criteria": Criterion, "variables": Variable, "cohorts": Cohort, "valuesets": ValueSet}


def version_or_404(version_id: int) -> ProtocolVersion:
    version = db.session.get(ProtocolVersion, version_id)
    if version is None:
        abort(404, description=f"no protocol version {version_id}")
    return version


class WorkbenchView(RoleAccess, BaseView):
    """A version's contents on one page, with the ways to change them while it is a draft."""

    roles = ("writer", "reviewer")

    @expose("/")
    def index(self) -> str:
        found = db.session.execute(select(ProtocolVersion).order_by(ProtocolVersion.id.desc())).scalars().all()
        return self.render("admin_eligo/workbench_index.html", versions=found)

    @expose("/<int:version_id>")
    def version(self, version_id: int) -> str:
        version = version_or_404(version_id)
        here = url_for(".version", version_id=version.id)
        return self.render(
            "admin_eligo/workbench.html",
            version=version,
            here=here,
            editable=version.status == DRAFT and has_role(current_user, "writer"),
            csrf=FlaskForm(),
        )

    @expose("/<int:version_id>/move", methods=("POST",))
    def move(self, version_id: int) -> Any:
        """Move one row (a criterion, by default) up or down: `part`, `id`, `offset` (-1 or 1)."""
        version = version_or_404(version_id)
        if not has_role(current_user, "writer"):
            abort(403)
        if not FlaskForm().validate_on_submit():
            flash("The form could not be accepted (its token expired); reload the page and try again.", "error")
            return redirect(url_for(".version", version_id=version.id))
        model = PARTS.get(request.form.get("part", "criteria"))
        offset = request.form.get("offset", type=int)
        part: Any = db.session.get(model, request.form.get("id", type=int) or 0) if model else None
        if part is None or part.version_id != version.id or offset not in (-1, 1):
            abort(400, description="`part`, `id` and `offset` (-1 or 1) name a row of this version to move")
        try:
            authoring.move(part, offset)
            db.session.commit()
        except ImmutableVersionError as refused:
            db.session.rollback()
            flash(f"Not moved: {refused}", "error")
        return redirect(url_for(".version", version_id=version.id, _anchor=request.form.get("part", "criteria")))

    @expose("/<int:version_id>/tests")
    def tests(self, version_id: int) -> str:
        """Run all test cases now, long before anyone signs: a pass/fail table, expected vs got where they differ."""
        version = version_or_404(version_id)
        runs, problem = [], None
        try:
            runs = authoring.run_tests(version)
        except ProtocolError as error:
            problem = error.problems
        except EligoError as error:
            problem = [str(error)]
        runs = sorted(runs, key=lambda r: r.passed)  # failures first, in the protocol's order
        return self.render(
            "admin_eligo/tests.html",
            version=version,
            runs=runs,
            failed=sum(not r.passed for r in runs),
            problem=problem,
        )

    @expose("/<int:version_id>/download.<fmt>")
    def download(self, version_id: int, fmt: str) -> Response:
        if fmt not in ("yaml", "json"):
            abort(404, description="download a version as .yaml or .json")
        name, body = authoring.download(version_or_404(version_id), fmt)
        mimetype = "application/json" if fmt == "json" else "application/yaml"
        return Response(body, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"})


class UploadForm(FlaskForm):
    file = FileField("Protocol file (YAML or JSON)")


class UploadView(RoleAccess, BaseView):
    """Upload a protocol file as a new protocol, or as a new draft of the protocol its code names."""

    roles = ("writer",)

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        form = UploadForm()
        problems: list[str] = []
        if form.validate_on_submit():
            raw = form.file.data.read(authoring.UPLOAD_MAX_BYTES + 1) if form.file.data else b""
            try:
                version = authoring.upload(_text(raw), created_by=actor())
                db.session.commit()
            except ProtocolError as error:
                db.session.rollback()
                problems = error.problems
            except EligoError as error:
                db.session.rollback()
                problems = [str(error)]
            else:
                kind = "a new protocol" if len(version.protocol.versions) == 1 else "a new draft"
                flash(
                    Markup("Uploaded as {}: {} version {} (draft).").format(kind, version.protocol.code, version.number)
                )
                return redirect(url_for("workbench.version", version_id=version.id))
        return self.render("admin_eligo/upload.html", form=form, problems=problems)


def _text(raw: bytes) -> str:
    if len(raw) > authoring.UPLOAD_MAX_BYTES:
        raise ProtocolError(f"the file is larger than {authoring.UPLOAD_MAX_BYTES // 1024 // 1024} MB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProtocolError("the file is not text in UTF-8: save it as YAML or JSON") from None
