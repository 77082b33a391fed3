"""Accounts and sessions: sites for screeners, server-side sign-out, timeouts, throttling, lockout, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service import auth
from service.auth import create_user
from service.infra.models import AuditEntry, User, db
from tests.service.conftest import page_token


def _login(client, username: str, password: str, **kwargs):
    token = page_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token}, **kwargs)


def _audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


# -- screeners have a site ------------------------------------------------------------------


def test_a_screener_cannot_be_created_without_a_site(app):
    with app.app_context(), pytest.raises(ValueError, match="needs a site"):
        create_user("nosite", "screener", password="x")


def test_the_database_refuses_an_active_screener_without_a_site(app):
    from sqlalchemy.exc import IntegrityError

    with app.app_context():
        user = db.session.execute(select(User).filter_by(username="screener")).scalar_one()
        user.site = None
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_a_screener_without_a_site_sees_no_log_at_all(app, client_as, screening_request):
    """Defence in depth: even if an account had no site, its scope is refused, never "every site"."""
    assert client_as("screener2").post("/api/v1/screenings", json=screening_request(site="SITE-2")).status_code == 201
    with app.test_request_context():
        from flask_login import login_user

        user = User(id=999, username="ghost", role="screener", site="", active=True, password_hash="x")
        login_user(user)
        with pytest.raises(auth.NoSite):
            auth.own_site()


def test_the_admin_users_form_saves_and_refuses_a_screener_without_a_site(signed_in, app):
    browser = signed_in("admin")
    form = browser.get("/admin/users/new/").get_data(as_text=True)
    assert 'name="password"' in form
    fields = {"csrf_token": page_token(form), "username": "newwriter", "role": "writer", "site": "", "active": "y"}
    created = browser.post("/admin/users/new/", data={**fields, "password": "a-long-password"})
    assert created.status_code == 200 and "shown <strong>once</strong>" in created.get_data(as_text=True)
    refused = browser.post(
        "/admin/users/new/", data={**fields, "username": "sitelss", "role": "screener", "password": "pw-123456"}
    )
    assert "needs a site" in refused.get_data(as_text=True)
    with app.app_context():
        names = set(db.session.execute(select(User.username)).scalars())
    assert "newwriter" in names and "sitelss" not in names
    assert _login(app.test_client(), "newwriter", "a-long-password").status_code == 302


# -- sessions end on the server --------------------------------------------------------------


def test_signing_out_ends_the_session_even_for_a_copied_cookie(signed_in, app):
    browser = signed_in("reviewer")
    cookie = browser.get_cookie("session").value
    assert browser.get("/log").status_code == 200
    page = browser.get("/").get_data(as_text=True)
    browser.post("/logout", data={"csrf_token": page_token(page)})
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/log").status_code == 302  # to the login page


def test_a_password_change_ends_every_session(signed_in, app):
    browser = signed_in("reviewer")
    admin = signed_in("admin")
    with app.app_context():
        user_id = db.session.execute(select(User.id).filter_by(username="reviewer")).scalar_one()
    form = admin.get(f"/admin/users/edit/?id={user_id}").get_data(as_text=True)
    saved = admin.post(
        f"/admin/users/edit/?id={user_id}",
        data={
            "csrf_token": page_token(form),
            "username": "reviewer",
            "role": "reviewer",
            "site": "",
            "active": "y",
            "password": "a-brand-new-one",
        },
    )
    assert saved.status_code == 302
    assert browser.get("/log").status_code == 302


@pytest.mark.parametrize("setting", ["SESSION_IDLE_MINUTES", "SESSION_MAX_HOURS"])
def test_sessions_time_out(make_app, setting):
    app = make_app(WTF_CSRF_ENABLED=True, **{setting: 0})
    client = app.test_client()
    assert _login(client, "reviewer", "pw-reviewer").status_code == 302
    assert client.get("/log").status_code == 302


# -- sign-in throttling, lockout and audit ---------------------------------------------------


def test_sign_in_is_throttled_per_address(make_app):
    app = make_app(WTF_CSRF_ENABLED=True, LOGIN_LIMIT_PER_ADDRESS="3 per minute")
    client = app.test_client()
    answers = [_login(client, f"nobody{i}", "wrong").status_code for i in range(4)]
    assert answers == [200, 200, 200, 429]


def test_sign_in_is_throttled_per_account_whatever_the_address(make_app):
    app = make_app(WTF_CSRF_ENABLED=True, LOGIN_LIMIT_PER_ACCOUNT="2 per minute", LOGIN_MAX_FAILURES=100)
    answers = []
    for i in range(3):
        client = app.test_client()
        answers.append(_login(client, "writer", "wrong", environ_base={"REMOTE_ADDR": f"10.0.0.{i}"}).status_code)
    assert answers == [200, 200, 429]


def test_repeated_failures_lock_the_account_until_an_admin_unlocks_it(make_app, signed_in):
    app = make_app(WTF_CSRF_ENABLED=True, LOGIN_MAX_FAILURES=3)
    client = app.test_client()
    for _ in range(3):
        assert _login(client, "writer", "wrong").status_code == 200
    assert _login(client, "writer", "pw-writer").status_code == 200  # locked: the right password too
    with app.app_context():
        user = db.session.execute(select(User).filter_by(username="writer")).scalar_one()
        assert user.locked_at is not None
        user_id = user.id
    admin = app.test_client()
    assert _login(admin, "admin", "pw-admin").status_code == 302
    page = admin.get("/admin/users/").get_data(as_text=True)
    unlocked = admin.post(
        "/admin/users/action/", data={"csrf_token": page_token(page), "action": "unlock", "rowid": str(user_id)}
    )
    assert unlocked.status_code == 302
    assert _login(client, "writer", "pw-writer").status_code == 302


def test_unknown_usernames_cost_a_password_hash_too(app, monkeypatch):
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    with app.app_context():
        assert auth.check_password(None, "anything") is False
    assert checked == [auth._DUMMY_HASH]


def test_failed_sign_ins_and_signatures_are_in_the_audit_trail(app, client_as):
    app.config["WTF_CSRF_ENABLED"] = True
    _login(app.test_client(), "writer", "wrong")
    _login(app.test_client(), "no-such-user", "wrong")
    summaries = [e.summary for e in _audit(app, "signin_failed")]
    assert any(s.startswith("writer: wrong password") for s in summaries)
    assert any(s.startswith("no-such-user: unknown username") for s in summaries)
    reviewer = client_as("reviewer")
    amended = client_as("writer").post("/api/v1/protocols/NCT07193667/versions")
    number = amended.get_json()["version"]
    refused = reviewer.post(
        f"/api/v1/protocols/NCT07193667/versions/{number}/publish", json={"password": "wrong", "reason": "ok"}
    )
    assert refused.status_code == 403
    (entry,) = _audit(app, "signature_failed")
    assert entry.actor == "reviewer"


def test_sign_outs_and_failure_counts_are_not_account_changes_but_a_lockout_is(make_app, signed_in):
    app = make_app(WTF_CSRF_ENABLED=True, LOGIN_MAX_FAILURES=2)
    browser = app.test_client()
    assert _login(browser, "reviewer", "pw-reviewer").status_code == 302
    browser.post("/logout", data={"csrf_token": page_token(browser.get("/").get_data(as_text=True))})
    _login(app.test_client(), "writer", "wrong")
    assert _audit(app, "update") == []
    _login(app.test_client(), "writer", "wrong")
    (locked,) = _audit(app, "update")
    assert set(locked.after) == {"locked_at"}
