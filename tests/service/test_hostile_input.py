"""Hostile input answered with a 4xx naming what is wrong, quickly, and nothing stored."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from service.infra.models import AuditEntry, db

LAUGHS = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
    + ["protocol: LOL", "title: *i", "version: '1'"]
)


def test_yaml_aliases_that_expand_beyond_the_bound_are_refused_before_they_are_built(app, client_as):
    with app.app_context():
        before = db.session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    started = time.monotonic()
    response = client_as("writer").post("/api/v1/protocols/import", data=LAUGHS, content_type="application/yaml")
    assert time.monotonic() - started < 2
    assert response.status_code == 422
    assert "expands to more than" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == before


def test_deeply_nested_yaml_is_refused(client_as):
    deep = "protocol: X\ntitle: T\nversion: '1'\nsource: " + "[" * 5000 + "]" * 5000
    response = client_as("writer").post("/api/v1/protocols/import", data=deep, content_type="application/yaml")
    assert response.status_code == 422
    assert "nested more than" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "T" * 301), ("description", "d" * 20_001), ("protocol", "P" * 41)],
)
def test_protocol_text_fields_are_bounded(client_as, field, value):
    import rules

    data = rules.seed_protocol().to_dict()
    data[field] = value
    response = client_as("writer").post("/api/v1/protocols/import", json=data)
    assert response.status_code == 422
    assert f"`{field}` is {len(value)} characters long" in response.get_data(as_text=True)


@pytest.mark.parametrize("depth", [100, 1_000, 100_000])
def test_deeply_nested_json_is_a_400_naming_where(client_as, screening_request, depth):
    import json

    body = json.dumps(screening_request()).replace(
        '"inputs": {', '"inputs": {"deep": ' + "[" * depth + "]" * depth + ", ", 1
    )
    response = client_as("screener").post("/api/v1/screenings", data=body, content_type="application/json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert "nested too deeply" in error["message"]
    assert error["errors"][0]["field"].startswith(("inputs.deep", "body"))
