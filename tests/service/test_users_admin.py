"""The admin's Users page: create with a password policy, role and site, token shown once, rotate, deactivate."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from service.infra.models import User, db
from tests.service.conftest import page_token

NEW = "/admin/users/new/"


def _fields(form_html: str, **values: str) -> dict[str, str]:
    return {"csrf_token": page_token(form_html), "site": "", "active": "y", **values}


def _user(app, username: str) -> User | None:
    with app.app_context():
        return db.session.execute(select(User).filter_by(username=username)).scalar_one_or_none()


def _token_shown(html: str, username: str) -> str:
    return re.search(rf'data-token="{username}">([^<]+)<', html).group(1)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "a new account needs a password of at least 12 characters"),
        ("short-one", "at least 12 characters, not 9"),
        ("xx-Screener9-xx", "must not contain the username"),
        ("screener9abc", "must not contain the username"),
    ],
)
def test_the_password_policy_is_shown_on_the_form(signed_in, app, password, message):
    admin = signed_in("admin")
    form = admin.get(NEW).get_data(as_text=True)
    answer = admin.post(
        NEW, data=_fields(form, username="screener9", role="screener", site="SITE-9", password=password)
    )
    assert answer.status_code == 200
    assert message in answer.get_data(as_text=True)
    assert _user(app, "screener9") is None


def test_a_screener_without_a_site_is_refused_on_the_form(signed_in, app):
    admin = signed_in("admin")
    form = admin.get(NEW).get_data(as_text=True)
    page = admin.post(NEW, data=_fields(form, username="nosite", role="screener", password="a-long-password-1"))
    assert "a screener needs a site" in page.get_data(as_text=True)
    assert _user(app, "nosite") is None


def test_a_new_account_signs_in_and_its_token_is_shown_once(signed_in, app):
    admin = signed_in("admin")
    form = admin.get(NEW).get_data(as_text=True)
    created = admin.post(
        NEW, data=_fields(form, username="screener9", role="screener", site="SITE-9", password="a-long-password-1")
    )
    assert created.status_code == 200
    token = _token_shown(created.get_data(as_text=True), "screener9")
    assert token not in admin.get("/admin/users/").get_data(as_text=True)
    api = app.test_client().get("/api/v1/screenings", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    assert signed_in("screener9", "a-long-password-1").get("/log").status_code == 200


def _action(admin, action: str, user_id: int):
    page = admin.get("/admin/users/").get_data(as_text=True)
    return admin.post(
        "/admin/users/action/", data={"csrf_token": page_token(page), "action": action, "rowid": str(user_id)}
    )


def test_rotating_a_token_shows_the_new_one_once_and_the_old_one_stops_working(signed_in, app, tokens):
    admin = signed_in("admin")
    old = tokens["screener"]
    user_id = _user(app, "screener").id
    answer = _action(admin, "rotate_token", user_id)
    assert answer.status_code == 200
    new = _token_shown(answer.get_data(as_text=True), "screener")
    assert new != old
    client = app.test_client()
    assert client.get("/api/v1/screenings", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert client.get("/api/v1/screenings", headers={"Authorization": f"Bearer {new}"}).status_code == 200


@pytest.mark.parametrize("how", ["action", "form"])
def test_a_deactivated_account_can_neither_sign_in_nor_use_its_token(signed_in, app, how, bearer):
    screener = signed_in("screener")
    admin = signed_in("admin")
    user_id = _user(app, "screener").id
    if how == "action":
        assert _action(admin, "deactivate", user_id).status_code == 302
    else:
        url = f"/admin/users/edit/?id={user_id}"
        form = admin.get(url).get_data(as_text=True)
        fields = _fields(form, username="screener", role="screener", site="SITE-1")
        del fields["active"]
        assert admin.post(url, data=fields).status_code == 302
    assert not _user(app, "screener").active
    assert screener.get("/log").status_code == 302  # the open session ended
    token = page_token(app.test_client().get("/login").get_data(as_text=True))
    refused = app.test_client().post(
        "/login", data={"username": "screener", "password": "pw-screener", "csrf_token": token}
    )
    assert refused.status_code != 302
    assert app.test_client().get("/api/v1/screenings", headers=bearer("screener")).status_code == 401


def test_an_admin_cannot_deactivate_their_own_account(signed_in, app):
    admin = signed_in("admin")
    _action(admin, "deactivate", _user(app, "admin").id)
    assert _user(app, "admin").active


def test_accounts_are_not_deleted_but_deactivated(signed_in):
    assert "delete_view" not in signed_in("admin").get("/admin/users/").get_data(as_text=True)


def test_a_password_reset_and_a_token_rotation_are_in_the_audit_trail_without_the_secret(signed_in, app):
    from service.infra.models import AuditEntry

    admin = signed_in("admin")
    user_id = _user(app, "screener").id
    _action(admin, "rotate_token", user_id)
    url = f"/admin/users/edit/?id={user_id}"
    form = admin.get(url).get_data(as_text=True)
    admin.post(
        url, data=_fields(form, username="screener", role="screener", site="SITE-1", password="a-long-password-2")
    )
    with app.app_context():
        entries = db.session.execute(select(AuditEntry).where(AuditEntry.entity_id == user_id)).scalars().all()
        found = {(e.action, e.actor, e.summary) for e in entries if e.entity == "users"}
    assert ("token_rotated", "admin", "screener: API token replaced; the old one no longer works") in found
    assert ("password_reset", "admin", "screener: password replaced by an admin") in found
