"""Shared fixtures: the seed protocol compiled once, and eligible subjects per cohort to vary."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pytest

import rules
from rules.compiler import CompiledProtocol
from rules.decision import Decision
from rules.protocol import ProtocolDef


@pytest.fixture(scope="session")
def seed() -> ProtocolDef:
    return rules.seed_protocol()


@pytest.fixture(scope="session")
def compiled(seed: ProtocolDef) -> CompiledProtocol:
    return rules.compile_protocol(seed)


@pytest.fixture(scope="session")
def eligible_subjects(seed: ProtocolDef) -> dict[str, dict[str, Any]]:
    """One subject per cohort that the seed's own test cases declare eligible."""
    found: dict[str, dict[str, Any]] = {}
    for case in seed.test_cases:
        cohort = case.subject["cohort"]
        if case.expect == "eligible" and cohort not in found:
            found[cohort] = dict(case.subject)
    assert set(found) == {c.code for c in seed.cohorts}
    return found


@pytest.fixture
def subject(eligible_subjects: dict[str, dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """An eligible subject of a cohort, as a client sends it (ISO dates), with some values changed.

    None removes a value.
    """

    def make(cohort: str = "SLE", changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in eligible_subjects[cohort].items()}
        data = copy.deepcopy(data)
        for key, value in (changes or {}).items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return data

    return make


@pytest.fixture
def screen(compiled: CompiledProtocol, subject: Callable[..., dict[str, Any]]) -> Callable[..., Decision]:
    def run(cohort: str = "SLE", changes: Mapping[str, Any] | None = None) -> Decision:
        return rules.decide(compiled, subject(cohort, changes))

    return run


@pytest.fixture(scope="session")
def app():
    from service import create_app

    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()
