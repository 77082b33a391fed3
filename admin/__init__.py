"""The protocol writers' and reviewers' admin (Flask-Admin): criteria, dictionary, test cases, versions."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_admin import Admin

from admin.review import ReviewView
from admin.test_cases import TestCaseView
from admin.views import (
    AuditView,
    CohortView,
    CriterionView,
    EligoIndexView,
    ProtocolVersionView,
    ProtocolView,
    RebaseView,
    SignView,
    TryItView,
    UserView,
    ValueSetView,
    VariableView,
)
from admin.workbench import UploadView, WorkbenchView
from service.infra.models import (
    AuditEntry,
    Cohort,
    Criterion,
    Protocol,
    ProtocolVersion,
    TestCase,
    User,
    ValueSet,
    Variable,
    db,
)


def init_app(app: Flask) -> None:
    # The admin's own templates (admin/templates: its pages, and the master that Flask-Admin's extend) live
    # with its views, found through a blueprint registered before Flask-Admin's, so ours come first.
    app.register_blueprint(Blueprint("eligo_admin", __name__, template_folder="templates"))
    admin = Admin(name="Eligo admin", index_view=EligoIndexView(url="/admin"))
    session = db  # Flask-Admin 2.2 takes the Flask-SQLAlchemy object itself
    admin.add_view(ProtocolView(Protocol, session, name="Protocols", endpoint="protocols"))
    admin.add_view(ProtocolVersionView(ProtocolVersion, session, name="Versions", endpoint="versions"))
    admin.add_view(CriterionView(Criterion, session, name="Criteria", endpoint="criteria"))
    admin.add_view(VariableView(Variable, session, name="Data dictionary", endpoint="variables"))
    admin.add_view(ValueSetView(ValueSet, session, name="Value sets", endpoint="valuesets"))
    admin.add_view(CohortView(Cohort, session, name="Cohorts", endpoint="cohorts"))
    admin.add_view(TestCaseView(TestCase, session, name="Test cases", endpoint="testcases"))
    admin.add_view(TryItView(name="Try it", endpoint="tryit"))
    admin.add_view(WorkbenchView(name="Write protocols", endpoint="workbench"))
    admin.add_view(UploadView(name="Upload protocol", endpoint="upload"))
    admin.add_view(ReviewView(name="Review amendments", endpoint="review"))
    admin.add_view(SignView(name="Sign and publish", endpoint="sign"))
    admin.add_view(RebaseView(name="Rebase", endpoint="rebase"))
    admin.add_view(AuditView(AuditEntry, session, name="Audit trail", endpoint="audit"))
    admin.add_view(UserView(User, session, name="Users", endpoint="users"))
    admin.init_app(app)  # its templates render Flask-WTF's csrf_token(): CSRFProtect guards the admin too
