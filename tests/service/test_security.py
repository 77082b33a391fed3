"""Security headers on every response, and the hostile inputs the API fuzzer found, kept as regressions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import MAX_JSON_DEPTH, _may_need_walk, _walk_json


def test_our_pages_forbid_inline_scripts_and_framing(client_as):
    response = client_as(None).get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP on 127.0.0.1 unless ELIGO_HTTPS=1


def test_the_admin_may_run_its_own_inline_scripts_but_nothing_from_elsewhere(client_as):
    policy = client_as(None).get("/admin/").headers["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-inline'" in policy and "default-src 'self'" in policy


def test_behind_https_the_service_redirects_and_sends_hsts(make_app):
    app = make_app(HTTPS=True)
    client = app.test_client()
    assert client.get("/login").status_code == 302
    secure = client.get("/login", base_url="https://localhost")
    assert secure.status_code == 200 and "max-age=" in secure.headers["Strict-Transport-Security"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/screenings?protocol=%00", "protocol"),
        ("/api/v1/screenings.csv?site=a%00b", "site"),
    ],
)
def test_nul_characters_are_refused_with_the_field_named(client, url, field):
    response = client.get(url)
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0]["field"] == field


def test_nul_in_a_json_body_is_refused_with_its_path(client, screening_request):
    body = screening_request()
    body["inputs"]["sex"] = "fe\x00male"
    response = client.post("/api/v1/screenings", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["errors"][0]["field"] == "inputs.sex"


def test_a_nul_in_a_key_is_refused_with_its_path(client, screening_request):
    body = screening_request()
    body["inputs"]["se\x00x"] = "female"
    response = client.post("/api/v1/screenings", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["errors"][0]["field"] == "inputs"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=40,
)


def _nested(depth: int) -> list:
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    return nested


# Nesting about as deep as the walk allows, which random documents seldom reach.
_DEEP = st.integers(MAX_JSON_DEPTH - 4, MAX_JSON_DEPTH + 4).map(_nested)


@settings(max_examples=300, deadline=None)
@given(document=_JSON | _DEEP, ensure_ascii=st.booleans())
def test_the_byte_scan_never_skips_a_body_the_walk_would_refuse(document, ensure_ascii):
    """The NUL check walks a parsed body only when its bytes could hold a NUL or nest too deeply: any
    body the walk refuses must be one the scan sends to it, however it was encoded."""
    body = json.dumps(document, ensure_ascii=ensure_ascii).encode()
    if _walk_json(document) is not None:
        assert _may_need_walk(body)


@pytest.mark.parametrize("url", ["/api/v1/screenings/2147483648", "/api/v1/impact/99999999999999999999999"])
def test_ids_beyond_the_database_integer_are_not_found(client, url):
    assert client.get(url).status_code == 404


def test_a_version_filter_beyond_the_database_integer_is_a_clear_error(client):
    response = client.get("/api/v1/screenings?version=2147483648")
    assert response.status_code == 400 and response.get_json()["error"]["errors"][0]["field"] == "version"
