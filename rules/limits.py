"""What the durable-rules engine can hold, read once from the engine itself.

The vendored engine (vendor/durable-rules, PATCHES.md) keeps fixed capacities in its C
headers. `durable_rules_engine.get_limits()` reports them, and this module gives them
names and meanings, so the compiler can refuse at compile time, in words a protocol
writer can act on, what the engine would refuse at decision time with a bare error code.
The numbers come from the engine binary that is installed, never from a copy here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import durable_rules_engine as native


@dataclass(frozen=True)
class EngineLimits:
    """Each field is the largest count the engine accepts; one more fails with the error named."""

    sequence_expressions: int
    """Slots in one rule's expression sequence: each `$and`/`$or` group takes two, even when all
    its tests are plain comparisons, and each test against a field of another fact joined in the
    rule takes one; tests against the same fact, `$m` arithmetic included, take none. One more:
    create_ruleset error 113."""

    rules: int
    """Rules in one ruleset. One more: create_ruleset error 106."""

    alpha_children: int
    """Distinct tests that follow one shared chain of tests (an alpha node's hash set of
    children): rules that begin alike share the chain. One more: create_ruleset error 106."""

    alpha_absence_tests: int
    """Distinct `$nex` (field absent) tests following one shared chain of tests. One more:
    create_ruleset error 107."""

    alpha_rules: int
    """Rules whose tests end on the same chain (identical alpha conditions, e.g. rules that
    differ only in their `$m` comparisons). One more: create_ruleset error 108."""

    fact_properties: int
    """Fields in one fact, counting `sid`, `id` and any marker field. One more: assert_fact
    error 302 (at decision time, so the compiler must bound the variables a fact carries)."""

    traversal_stack: int
    """Tests that one fact matches at once while it goes down the alpha network (the matched
    tests waiting to be followed). One more: assert_fact error 303."""

    facts_per_match: int
    """Facts joined in one rule's match (`all` with several facts). One more: error 304."""

    rulesets: int
    """Rulesets alive at once in one process. One more: create_ruleset error 112."""


def _read() -> EngineLimits:
    reported = native.get_limits()
    return EngineLimits(**{f.name: int(reported[f.name]) for f in fields(EngineLimits)})


LIMITS: EngineLimits = _read()
"""The installed engine's limits, read once at import."""
