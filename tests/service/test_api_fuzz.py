"""Schemathesis drives every operation of the OpenAPI document with generated requests, under all its checks.

Every check runs (no server error, status codes, content types, headers and response bodies conforming
to the document, negative data rejected, positive data accepted, auth, use after free, ...). One
setting is ours: a request the schema allows may still be refused for what its values mean (an unknown
protocol, a subject with impossible values, text with NUL characters), and the API answers that with
400/404/409/413/422, each documented. Driven through hypothesis directly: schemathesis 4's pytest
fixture loader does not run under pytest 9. Runs on PostgreSQL too (ELIGO_TEST_DATABASE_URL).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig

MEANINGFUL_REFUSALS = ["2xx", "3xx", 400, 401, 403, 404, 405, 409, 413, 422, 429]


@pytest.fixture
def api_schema(make_app):
    app = make_app(BATCH_INLINE=True, API_CHECK_RESPONSES=True)
    config = SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": MEANINGFUL_REFUSALS}}}
    )
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config)


def test_every_operation_passes_every_check(api_schema, bearer):
    headers = bearer("admin")
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def exercise(case):
            case.call_and_validate(headers=headers)

        try:
            exercise()
        except BaseException as failure:  # schemathesis' FailureGroup: every check that failed, with a curl line
            if isinstance(failure, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
