"""Fixtures of the service tests: browser-like clients signed in through the login page."""

from __future__ import annotations

import re

import pytest


def page_token(html: str) -> str:
    """The CSRF token a page's form carries."""
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


@pytest.fixture
def signed_in(app):
    """A client signed in as one of the accounts (password pw-<username>), with CSRF on, as a browser."""
    app.config["WTF_CSRF_ENABLED"] = True

    def sign_in(username: str, password: str | None = None):
        client = app.test_client()
        token = page_token(client.get("/login").get_data(as_text=True))
        response = client.post(
            "/login", data={"username": username, "password": password or f"pw-{username}", "csrf_token": token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return sign_in
