"""The vendored durable-rules engine (vendor/durable-rules, PATCHES.md): each patch, shown.

These drive `durable_rules_engine` directly, below the compiler, so each test states one
engine fact: what it holds, what it refuses and with which error, and what it gives back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import durable_rules_engine as native
import pytest

import rules
from rules.engine import DurableEngine
from rules.limits import LIMITS, EngineLimits


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def create(ruleset: dict) -> int:
    return native.create_ruleset("t", json.dumps(ruleset))


def refused_with(ruleset: dict) -> str | None:
    """The engine's error code for a ruleset, or None if it holds it (and is then deleted)."""
    try:
        handle = create(ruleset)
    except native.error as error:
        return str(error).rsplit(" ", 1)[-1]
    native.delete_ruleset(handle)
    return None


def fired(handle: int, fact: dict) -> list[str]:
    """The rules a fact fires, in order; its state is deleted after."""
    result = native.assert_fact(handle, json.dumps({"sid": "1", "id": "f", **fact}))
    names = []
    try:
        if result[0] == 0:
            message = native.start_action_for_state(handle, result[1])
            message = message[1] if message else None
            while message:
                names.append(message[2 : message.index('"', 2)])
                message = native.complete_and_start_action(handle, result[1])
    finally:
        native.delete_state(handle, "1")
    return names


def test_the_installed_engine_is_the_vendored_build():
    from importlib.metadata import version

    assert version("durable-rules") == "2.0.28+eligo.1"


def test_the_binding_calls_no_c_api_that_python_3_13_removed():
    binary = Path(native.__file__).read_bytes()
    assert b"PyEval_CallObject" not in binary


def test_limits_are_read_from_the_engine_once_with_a_documented_field_each():
    reported = native.get_limits()
    assert set(reported) == {f for f in EngineLimits.__dataclass_fields__}
    assert EngineLimits(**reported) == LIMITS
    with pytest.raises(AttributeError):
        LIMITS.rules = 1  # type: ignore[misc]


def test_limits_are_raised_above_upstreams():
    """Upstream: 31 sequence slots, 4,096 rules, 127/255 list entries, a 64-entry traversal stack."""
    assert LIMITS.sequence_expressions == 65_535
    assert LIMITS.rules == 65_536
    assert LIMITS.alpha_absence_tests == 511 and LIMITS.alpha_rules == 1_023
    assert LIMITS.traversal_stack == 4_096


def _alternatives(k: int, outer: str) -> dict:
    """The compiler's shape: a stage test, then `outer` of k groups of (present and compared)."""
    inner = "$and" if outer == "$or" else "$or"
    exists = "$ex" if inner == "$and" else "$nex"
    compare = "$gte" if inner == "$and" else "$lt"
    groups = [{inner: [{exists: {f"v{i}": 1}}, {compare: {f"v{i}": float(i)}}]} for i in range(k)]
    condition = {"$and": [{"t": "stage0"}, {"$neq": {"t": "route0"}}, {outer: groups}]}
    return {"r": {"all": [{"m": condition}]}}


@pytest.mark.parametrize("outer", ["$or", "$and"])
def test_any_number_of_alternatives_is_held_and_decides(outer):
    """Upstream refused exactly 14 groups (error 113): alpha-only groups took two of 31 slots each."""
    for k in range(1, 65):
        handle = create(_alternatives(k, outer))
        try:
            if outer == "$or":  # only the last alternative holds
                fact = {"t": "stage0", **{f"v{i}": i - 1 for i in range(k - 1)}, f"v{k - 1}": k}
                assert fired(handle, fact) == ["r"], k
                assert fired(handle, {"t": "stage0", **{f"v{i}": i - 1 for i in range(k)}}) == [], k
            else:  # every group holds: each value missing or below its threshold
                assert fired(handle, {"t": "stage0", **{f"v{i}": i - 1 for i in range(1, k)}}) == ["r"], k
                assert fired(handle, {"t": "stage0", "v0": 5}) == [], k
        finally:
            native.delete_ruleset(handle)


def test_a_rule_filling_the_expression_sequence_is_held_and_one_group_more_is_refused():
    """Each `$or` group takes two slots and the outer `$and` two: 2 + 2 x 32,766 fills 65,534."""

    def groups(n: int) -> dict:
        return {"r": {"all": [{"m": {"$and": [{"$or": [{f"a{i}": 1}, {f"b{i}": 1}]} for i in range(n)]}}]}}

    fitting = (LIMITS.sequence_expressions - 2) // 2
    assert refused_with(groups(fitting)) is None
    assert refused_with(groups(fitting + 1)) == "113"


def test_a_ruleset_at_the_rule_limit_is_held_and_one_rule_more_is_refused():
    def many(n: int) -> dict:  # 500 tests after each of 132 first tests: no other limit is near
        return {f"r{i}": {"all": [{"m": {"$and": [{"p": i // 500}, {"q": i % 500}]}}]} for i in range(n)}

    assert refused_with(many(LIMITS.rules)) is None
    assert refused_with(many(LIMITS.rules + 1)) == "106"


def _levels(n: int) -> dict:
    """Rules that make one fact match `alpha_children` tests at each of n levels: each level holds
    510 matched tests pending while the 511th is followed down, so the traversal stack peaks at
    1 + 510 x n."""
    width = LIMITS.alpha_children
    ruleset = {}
    for level in range(n):
        chain = [{"$gte": {f"v{j}": 0}} for j in range(level)]
        for k in range(width - 1, -1, -1):  # the test that goes deeper is linked last, popped first
            ruleset[f"r{level}_{k}"] = {"all": [{"m": {"$and": [*chain, {"$gte": {f"v{level}": -k}}]}}]}
    return ruleset


def test_a_fact_matching_thousands_of_tests_at_once_decides_up_to_the_traversal_stack():
    """Upstream's 64-entry stack refused a fact matching 64 sibling tests."""
    width = LIMITS.alpha_children

    def levels(n: int) -> tuple[int, dict]:
        return create(_levels(n)), {f"v{j}": 0 for j in range(n)}

    fitting = (LIMITS.traversal_stack - 1) // (width - 1)
    handle, fact = levels(fitting)
    try:
        assert len(fired(handle, fact)) == fitting * width
    finally:
        native.delete_ruleset(handle)
    handle, fact = levels(fitting + 1)
    try:
        with pytest.raises(native.error, match="303"):
            fired(handle, fact)
    finally:
        native.delete_state(handle, "1")
        native.delete_ruleset(handle)


def test_deleting_a_state_after_a_failed_assert_does_not_abort_the_process(tmp_path):
    """Upstream never initialised a new state's action context: deleting a state that no action
    had started on freed stale pointers (`free(): invalid pointer`, the process aborted). Run in a
    child process, so that a regression fails this test rather than the whole run."""
    levels = (LIMITS.traversal_stack - 1) // (LIMITS.alpha_children - 1) + 1
    (tmp_path / "rules.json").write_text(json.dumps(_levels(levels)))
    fact = json.dumps({"sid": "1", "id": "f", **{f"v{j}": 0 for j in range(levels)}})
    code = f"""
import durable_rules_engine as native, pathlib
handle = native.create_ruleset("s", pathlib.Path({str(tmp_path / "rules.json")!r}).read_text())
try:
    native.assert_fact(handle, {fact!r})
except native.error as error:
    print(error)
native.delete_state(handle, "1")
native.delete_ruleset(handle)
print("survived")
"""
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split("\n")[:2] == ["Could not assert fact, error code: 303", "survived"]


def test_a_ruleset_at_the_absence_test_limit_is_held_and_one_more_is_refused():
    def absent(n: int) -> dict:
        return {f"r{i}": {"all": [{"m": {"$nex": {f"v{i}": 1}}}]} for i in range(n)}

    assert refused_with(absent(LIMITS.alpha_absence_tests)) is None
    assert refused_with(absent(LIMITS.alpha_absence_tests + 1)) == "107"


def test_rules_ending_on_one_test_up_to_the_limit_are_held_and_one_more_is_refused():
    def alike(n: int) -> dict:
        return {f"r{i}": {"all": [{"m": {"t": "stage0"}}]} for i in range(n)}

    assert refused_with(alike(LIMITS.alpha_rules)) is None
    assert refused_with(alike(LIMITS.alpha_rules + 1)) == "108"


def test_distinct_tests_after_one_chain_up_to_the_limit_are_held_and_one_more_is_refused():
    def distinct(n: int) -> dict:
        return {f"r{i}": {"all": [{"m": {f"v{i}": 1}}]} for i in range(n)}

    handle = create(distinct(LIMITS.alpha_children))
    try:
        assert fired(handle, {"v7": 1}) == ["r7"]
        assert fired(handle, {"other": 1}) == []  # a full set made this loop forever upstream
    finally:
        native.delete_ruleset(handle)
    assert refused_with(distinct(LIMITS.alpha_children + 1)) == "106"


@pytest.mark.parametrize("extra_fields", [0, 80])
def test_a_fact_matches_the_same_rules_with_fewer_or_more_fields_than_a_node_has_children(extra_fields):
    # Patch 12: a node with fewer children than the fact has fields looks each child's field up;
    # otherwise each field probes the children. Forty rules after one `t` test: a 4-field fact
    # takes the second way, a fact with 80 more fields the first. Both fire exactly the same.
    ruleset = {f"r{i:02}": {"all": [{"m": {"$and": [{"t": "a"}, {f"f{i}": i}]}}]} for i in range(40)}
    ruleset["absent"] = {"all": [{"m": {"$and": [{"t": "a"}, {"$nex": {"f3": 1}}]}}]}
    handle = create(ruleset)
    try:
        padding = {f"x{k}": k for k in range(extra_fields)}
        assert sorted(fired(handle, {"t": "a", "f5": 5, **padding})) == ["absent", "r05"]
        assert sorted(fired(handle, {"t": "a", "f3": 3, "f39": 39, "f7": 0, **padding})) == ["r03", "r39"]
        assert fired(handle, {"t": "b", "f5": 5, **padding}) == []
    finally:
        native.delete_ruleset(handle)


def test_a_new_state_keeps_nothing_of_the_deleted_state_whose_arrays_it_reuses():
    # Patch 13: a deleted state's per-rule arrays are cleaned and reused by the next state. A join
    # half-matched in one state (its left frame stored) must not complete in the next, and a rule
    # fired in one must fire again, once, in the next.
    handle = create(
        {
            "join": {"all": [{"a": {"t": "x"}}, {"b": {"t": "y"}}]},
            "single": {"all": [{"m": {"t": "y"}}]},
        }
    )
    try:
        for round_ in range(3):
            for sid in ("1", "2"):
                native.assert_fact(handle, json.dumps({"sid": sid, "id": "x", "t": "x"}))
                native.delete_state(handle, sid)
                assert fired(handle, {"t": "y"}) == ["single"], round_
        state = native.assert_fact(handle, json.dumps({"sid": "3", "id": "x", "t": "x"}))[1]
        native.assert_fact(handle, json.dumps({"sid": "3", "id": "y", "t": "y"}))
        names = []
        message = native.start_action_for_state(handle, state)
        message = message[1] if message else None
        while message:
            names.append(message[2 : message.index('"', 2)])
            message = native.complete_and_start_action(handle, state)
        native.delete_state(handle, "3")
        assert sorted(names) == ["join", "single"]
        assert fired(handle, {"t": "y"}) == ["single"]
    finally:
        native.delete_ruleset(handle)


def test_fire_actions_fires_what_start_and_complete_fire_and_stops_at_the_rules_to_act_on():
    # Patch 14: fire_actions completes the actions whose names start with none of the prefixes
    # and returns their names; it stops at one that does, started, for the caller to act on.
    ruleset = {
        "a:pass": {"all": [{"m": {"$and": [{"t": "s0"}, {"x": 1}]}}]},
        "b:fail": {"all": [{"m": {"$and": [{"t": "s0"}, {"y": 2}]}}]},
        "advance:0": {"all": [{"m": {"t": "s0"}}], "pri": 100},
        "c:pass": {"all": [{"m": {"t": "s1"}}]},
    }
    handle = create(ruleset)
    try:
        expected = fired(handle, {"t": "s0", "x": 1, "y": 2})
        state = native.assert_fact(handle, json.dumps({"sid": "1", "id": "s0", "t": "s0", "x": 1, "y": 2}))[1]
        names, acting = native.fire_actions(handle, state, False, ("advance:",))
        assert acting and names[-1] == "advance:0"
        assert names == expected
        native.assert_fact(handle, json.dumps({"sid": "1", "id": "s1", "t": "s1"}))
        assert native.fire_actions(handle, state, True, ("advance:",)) == (["c:pass"], False)
        assert native.fire_actions(handle, state, False, ("advance:",)) == ([], False)
        native.delete_state(handle, "1")
    finally:
        native.delete_ruleset(handle)


def test_fire_actions_hands_back_the_names_to_act_on_apart():
    # Patch 15: with a fifth argument, fire_actions also returns the fired names that start with one
    # of those prefixes, in firing order and as the same objects, so the driver does not look through
    # every outcome rule's name for the few it acts on.
    ruleset = {
        "derive:x2": {"all": [{"m": {"$and": [{"t": "s0"}, {"$ex": {"x": 1}}]}}]},
        "a:pass": {"all": [{"m": {"$and": [{"t": "s0"}, {"x": 1}]}}]},
        "node:_n1:T": {"all": [{"m": {"$and": [{"t": "s0"}, {"y": 2}]}}]},
        "b:fail": {"all": [{"m": {"$and": [{"t": "s0"}, {"y": 2}]}}]},
        "advance:0": {"all": [{"m": {"t": "s0"}}], "pri": 100},
        "c:pass": {"all": [{"m": {"t": "s1"}}]},
    }
    acts = ("derive:", "node:", "advance:")
    handle = create(ruleset)
    try:
        expected = fired(handle, {"t": "s0", "x": 1, "y": 2})
        state = native.assert_fact(handle, json.dumps({"sid": "1", "id": "s0", "t": "s0", "x": 1, "y": 2}))[1]
        names, acting, acted = native.fire_actions(handle, state, False, ("advance:",), acts)
        assert names == expected and acting
        assert acted == [name for name in names if name.startswith(acts)]
        assert sorted(acted[:-1]) == ["derive:x2", "node:_n1:T"] and acted[-1] == "advance:0"
        assert all(any(a is n for n in names) for a in acted)
        native.assert_fact(handle, json.dumps({"sid": "1", "id": "s1", "t": "s1"}))
        assert native.fire_actions(handle, state, True, ("advance:",), acts) == (["c:pass"], False, [])
        assert native.fire_actions(handle, state, False, ("advance:",)) == ([], False)  # four arguments: as before
        with pytest.raises(ValueError, match="at most 16 prefixes"):
            native.fire_actions(handle, state, False, ("advance:",), ("x",) * 17)
        native.delete_state(handle, "1")
    finally:
        native.delete_ruleset(handle)


def test_a_rules_name_is_one_string_per_ruleset_and_never_another_rulesets():
    # Patch 16: fire_actions hands out one Python string per rule name and ruleset, made when the rule
    # first fires; deleting the ruleset (or reusing its handle) forgets them.
    def fire(handle: int, sid: str) -> list[str]:
        state = native.assert_fact(handle, json.dumps({"sid": sid, "id": "f", "t": "s0", "x": 1}))[1]
        names, _ = native.fire_actions(handle, state, False, ("advance:",))
        native.delete_state(handle, sid)
        return names

    for round_ in range(40):  # handles are reused after enough rulesets come and go
        rule = f"r{round_}:pass"
        handle = create({rule: {"all": [{"m": {"$and": [{"t": "s0"}, {"x": 1}]}}]}})
        try:
            first, second = fire(handle, "1"), fire(handle, "2")
            assert first == second == [rule]
            assert first[0] is second[0]
        finally:
            native.delete_ruleset(handle)


def test_a_fact_at_the_property_limit_is_matched_and_one_more_is_refused():
    handle = create({"r": {"all": [{"m": {"t": "x"}}]}})
    try:
        fields = {f"p{i}": i for i in range(LIMITS.fact_properties - 3)}  # with sid, id and t
        assert fired(handle, {"t": "x", **fields}) == ["r"]
        with pytest.raises(native.error, match="302"):
            fired(handle, {"t": "x", "extra": 1, **fields})
    finally:
        native.delete_ruleset(handle)


def test_deleting_rulesets_returns_their_memory(compiled):
    """Upstream's process grew with every ruleset (jruizgit/rules #137, #371); now it stays flat."""
    engine = DurableEngine()
    subject = {"cohort": "SLE"}
    engine.run(compiled, subject)
    engine.unload(compiled)
    start = rss_mb()
    for _ in range(200):
        handle = native.create_ruleset(compiled.ruleset_name, compiled.ruleset_json)
        native.delete_ruleset(handle)
    for _ in range(20):  # decided under, then unloaded
        engine.run(compiled, subject)
        assert engine.unload(compiled)
    assert rss_mb() - start < 25  # one seed ruleset is about 5 MB; 220 were 2 GB upstream


def test_a_refused_ruleset_is_freed_not_left_under_a_handle():
    too_many = {f"r{i}": {"all": [{"m": {"$nex": {f"v{i}": 1}}}]} for i in range(LIMITS.alpha_absence_tests + 1)}
    assert refused_with(too_many) == "107"
    start = rss_mb()
    for _ in range(100):
        assert refused_with(too_many) == "107"
    assert rss_mb() - start < 10


def test_unloading_a_version_not_loaded_is_a_no_op(compiled):
    assert DurableEngine().unload(compiled) is False


@pytest.mark.parametrize("count", [2_000, 10_000])
def test_many_facts_asserted_at_once_are_all_matched(count):
    """2,000 facts in one assert_facts crashed the whole process (DESIGN.md section 5)."""
    handle = create({"r": {"all": [{"m": {"$gte": {"v": 0}}}]}})
    try:
        facts = [{"sid": "1", "id": f"f{i}", "v": i, "pad": "x" * 40} for i in range(count)]
        result = native.assert_facts(handle, json.dumps(facts))
        seen = 0
        message = native.start_action_for_state(handle, result[1])
        while message:
            seen += 1
            message = native.complete_and_start_action(handle, result[1])
        assert seen == count
    finally:
        native.delete_state(handle, "1")
        native.delete_ruleset(handle)


def test_the_seed_protocol_decides_the_same_through_the_vendored_engine(seed, compiled):
    for case in seed.test_cases:
        if case.expect != "refused":  # refused input never reaches the engine
            assert rules.decide(compiled, case.subject).decision == case.expect
