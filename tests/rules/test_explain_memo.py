"""Explanations taken from the per-criterion memo are the explanations that would be built afresh.

`rules/explain.py` keeps each criterion's explanation keyed by the values it reads, the units they
were submitted in and the outcome, and gives it again to the next subject that agrees on those. If
the key missed a field the explanation reads, a subject would be explained with another's values:
these tests decide subjects through a protocol whose memo is warm and compare every explanation
with one built by a protocol whose memo is emptied before each subject.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from rules.compiler import CompiledProtocol
from rules.errors import SubjectInputErrors
from tests.rules.test_kleene import SEED, subjects

EXPLAIN = importlib.import_module("rules.explain")  # `rules.explain` is also the package's function
FRESH = rules.compile_protocol(rules.seed_protocol())
EXAMPLES = sorted((Path(rules.__file__).parent / "protocols" / "examples").glob("*.yaml"))


def forget(compiled: CompiledProtocol) -> None:
    """Empty the explanation memos, so the next decision is explained from nothing."""
    compiled.cache.pop("explain.criteria", None)  # each criterion's memo, and its parts'
    compiled.cache.pop("explain.derived", None)


def explained(decision: rules.Decision) -> str:
    return json.dumps(decision.to_dict(), sort_keys=True, default=str)


def test_memo_is_warm_after_a_subject(compiled, subject):
    forget(compiled)
    rules.decide(compiled, subject("SLE"))
    assert sum(len(plan.kept) for plan in compiled.cache["explain.criteria"]) > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(subjects(SEED, fill=0.9), min_size=2, max_size=6))
def test_memoised_explanations_equal_fresh_ones(batch: list[dict[str, Any]]):
    order = batch + batch[::-1]  # each subject also after the others warmed the memo
    decisions = [rules.decide(SEED, subject) for subject in order]
    for subject, decision in zip(order, decisions, strict=True):  # read after all: shared parts stay as given
        forget(FRESH)
        assert explained(decision) == explained(rules.decide(FRESH, subject))


def test_a_value_submitted_in_another_unit_is_explained_in_its_own_words(compiled, subject):
    canonical = rules.decide(compiled, subject("SLE", {"wbc": 3.5}))
    other_unit = rules.decide(compiled, subject("SLE", {"wbc": {"value": 3500, "unit": "/µL"}}))
    before = next(c for c in canonical.criteria if c.code == "IN-03a").sentence
    after = next(c for c in other_unit.criteria if c.code == "IN-03a").sentence
    assert "submitted" not in before
    assert "(submitted 3500 /µL)" in after


def test_memo_stays_bounded(compiled, subject):
    forget(compiled)
    for tenth in range(EXPLAIN.MEMO_LIMIT + 10):
        rules.decide(compiled, subject("SLE", {"hgb": 100 + tenth / 10}))
    plan = next(p for p in compiled.cache["explain.criteria"] if p.code == "IN-03c")
    assert 0 < len(plan.kept) <= EXPLAIN.MEMO_LIMIT
    assert all(len(memo.kept) <= EXPLAIN.MEMO_LIMIT for memo in compiled.cache["explain.derived"].values())


def test_a_memo_that_rarely_finds_stops_keeping_and_the_others_keep(compiled, subject):
    forget(compiled)
    for tenth in range(EXPLAIN.REVIEW):  # a new haemoglobin every time: IN-03c never finds one
        rules.decide(compiled, subject("SLE", {"hgb": 100 + tenth / 10}))
    plans = {p.code: p for p in compiled.cache["explain.criteria"]}
    assert not plans["IN-03c"].on and not plans["IN-03c"].kept
    assert plans["IN-02"].on and len(plans["IN-02"].kept) == 1  # yes/no: found every time after the first
    later = rules.decide(compiled, subject("SLE", {"hgb": 55}))
    forget(FRESH)
    assert explained(later) == explained(rules.decide(FRESH, subject("SLE", {"hgb": 55})))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_trials_memoised_equal_fresh(path):
    warm = rules.compile_protocol(rules.load_protocol(path))
    cold = rules.compile_protocol(rules.load_protocol(path))
    cases = [case.subject for case in warm.definition.test_cases]
    decided = []
    for subject in cases + cases[::-1]:
        try:
            decided.append((subject, rules.decide(warm, subject)))
        except SubjectInputErrors:  # a test case of bad input: nothing to explain
            continue
    for subject, decision in decided:
        forget(cold)
        assert explained(decision) == explained(rules.decide(cold, subject))
