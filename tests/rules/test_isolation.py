"""The engine in a child process decides exactly as in-process, and unloads old rulesets to bound memory."""

from __future__ import annotations

import dataclasses

import pytest

import rules
from rules.errors import SubjectInputErrors
from rules.isolation import EnginePool, IsolatedEngine
from rules.protocol import REFUSED, from_dict


@pytest.fixture(scope="module")
def isolated():
    engine = IsolatedEngine(timeout=10, max_rulesets=2)
    yield engine
    engine.close()


def test_the_canonical_definition_crosses_the_pipe_unchanged(seed):
    assert from_dict(seed.canonical()).content_hash == seed.content_hash


def test_every_seed_test_case_decides_the_same_in_a_child_process(compiled, seed, isolated):
    for case in seed.test_cases:
        if case.expect == REFUSED:
            continue  # refused input is the dictionary's, before any engine (see test_protocol_file)
        assert (
            rules.decide(compiled, case.subject, isolated).to_dict() == rules.decide(compiled, case.subject).to_dict()
        )


def test_a_batch_is_one_round_trip_with_each_subjects_own_answer(compiled, subject, isolated):
    subjects = [subject("SLE"), {"cohort": "ITP", "screening_date": "2026-11-02"}, subject("SSc", {"age": 12})]
    results = rules.outcomes_many(compiled, subjects, isolated)
    assert [r[0] for r in results] == ["eligible", "incomplete", "not_eligible"]


def test_past_its_ruleset_bound_the_child_unloads_the_least_recently_used_and_lives_on(
    compiled, seed, subject, isolated
):
    variants = [compiled] + [
        rules.compile_protocol(dataclasses.replace(seed, title=f"{seed.title} (variant {n})")) for n in (1, 2)
    ]
    pids = []
    for variant in [variants[0], variants[1], variants[0], variants[2]]:
        assert rules.decide(variant, subject("SLE"), isolated).decision == "eligible"
        pids.append(isolated.pid)
    assert len(set(pids)) == 1
    assert isolated.loaded == {variants[0].content_hash, variants[2].content_hash}
    assert rules.decide(variants[1], subject("SLE"), isolated).decision == "eligible"  # loaded again
    assert isolated.pid == pids[0]


def test_a_superseded_draft_is_unloaded_from_the_child(compiled, seed, subject, isolated):
    draft = rules.compile_protocol(dataclasses.replace(seed, title=f"{seed.title} (draft)"))
    rules.decide(draft, subject("SLE"), isolated)
    isolated.unload(draft)
    assert draft.content_hash not in isolated.loaded
    assert rules.decide(draft, subject("SLE"), isolated).decision == "eligible"


def test_a_pool_splits_a_batch_across_processes_and_keeps_its_order(compiled, subject):
    pool = EnginePool(2, timeout=10)
    try:
        subjects = [subject(cohort, {"age": 30 + i}) for i, cohort in enumerate(["SLE", "SSc", "IIM", "ITP"] * 5)]
        subjects[7] = subject("SLE", {"anc": 0.5})
        subjects[11] = subject("SSc", {"anc": "lots", "hgb": "12 furlongs"})
        pooled = rules.outcomes_many(compiled, subjects, pool)  # normalised in the engine processes
        bad = pooled.pop(11)
        assert isinstance(bad, SubjectInputErrors) and [e.field for e in bad.errors] == ["anc", "hgb.unit"]
        assert pooled == [rules.outcomes(compiled, s) for i, s in enumerate(subjects) if i != 11]
        assert len({engine.pid for engine in pool.engines}) == 2
    finally:
        pool.close()
