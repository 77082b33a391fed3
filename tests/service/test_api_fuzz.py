"""Schemathesis drives every operation of the OpenAPI document with generated requests: none may give a 5xx.

Driven through hypothesis directly: schemathesis 4's pytest fixture loader does not run under pytest 9.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import TOKENS


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def test_no_generated_request_gives_a_server_error(api_schema):
    headers = {"Authorization": f"Bearer {TOKENS['admin']}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def exercise(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        exercise()
