"""The audit trail: who changed which protocol data, when, from what to what; never editable."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from service import versions
from service.infra.models import AuditEntry, db

SEED = "/api/v1/protocols/NCT07193667"


def _entries(app, **filters):
    with app.app_context():
        query = db.select(AuditEntry).filter_by(**filters).order_by(AuditEntry.id)
        return [
            (e.actor, e.action, e.entity, e.summary, e.before, e.after) for e in db.session.execute(query).scalars()
        ]


def test_seed_import_and_publication_are_in_the_trail(app):
    publishes = _entries(app, action="publish")
    assert [(actor, summary) for actor, _, _, summary, _, _ in publishes] == [("system", "NCT07193667 version 1")]
    assert publishes[0][4]["status"] == "draft" and publishes[0][5]["status"] == "published"


def test_amendment_edit_and_publish_record_who_and_before_after(app, client_as):
    client_as("writer").post(f"{SEED}/versions")
    with app.test_request_context():
        from flask_login import login_user

        from service.infra.models import User

        login_user(db.session.execute(db.select(User).filter_by(username="writer")).scalar_one())
        criterion = next(c for c in versions.find_version("NCT07193667", 2).criteria if c.code == "IN-03c")
        criterion.rule = "hgb >= 55 g/L"
        db.session.commit()
    client_as("reviewer").post(f"{SEED}/versions/2/publish", json={"password": "pw-reviewer", "reason": "approved"})
    updates = _entries(app, action="update", entity="criteria")
    assert updates == [
        (
            "writer",
            "update",
            "criteria",
            "NCT07193667 v2 criterion IN-03c",
            {"rule": "hgb >= 60 g/L"},
            {"rule": "hgb >= 55 g/L"},
        )
    ]
    (created,) = [e for e in _entries(app, action="create", entity="protocol_versions") if e[0] == "writer"]
    assert created[3] == "NCT07193667 version 2"
    assert [e[0] for e in _entries(app, action="publish")] == ["system", "reviewer"]


def test_secrets_never_reach_the_trail(app):
    entries = _entries(app, entity="users")
    assert entries, "account creation is audited"
    for *_, before, after in entries:
        recorded = {**(before or {}), **(after or {})}
        assert "password_hash" not in recorded and "token_hash" not in recorded


def test_the_trail_cannot_be_edited(app):
    with (
        app.app_context(),
        pytest.raises(sqlalchemy.exc.DBAPIError, match="kept as recorded"),
        db.engine.begin() as connection,
    ):
        connection.execute(text("DELETE FROM audit_log"))
