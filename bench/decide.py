"""Benchmark: deciding a subject, through durable-rules and through the plain-Python reference.

    python bench/decide.py            # 10,000 generated subjects, all four cohorts
    python bench/decide.py --n 2000

Each subject is decided five ways in turn, so all are measured side by side under
the same conditions: the engine with the full explanation in-process, the same
through the isolated engine process the service uses (rules/isolation.py), the
reference evaluator with the same explanation, and both without it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rules
from bench.cohort import subjects
from bench.measure import percentile
from bench.peer_zen import seed_with_copies
from rules import reference
from rules.decision import combine
from rules.engine import default_engine
from rules.isolation import IsolatedEngine


def reference_outcomes(compiled, subject):
    evaluation = reference.evaluate(compiled, compiled.dictionary.normalize(subject).values)
    return combine(list(evaluation.outcomes.values())), evaluation.outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time with this process's CPU time, not the wall clock: on a machine shared with other work, time"
        " spent waiting for a core is then not counted (the engine process's own work is then not counted either)",
    )
    parser.add_argument("--copies", type=int, default=1, help="the seed's criteria this many times (3: 141)")
    args = parser.parse_args()

    protocol = seed_with_copies(args.copies)
    clock = time.process_time if args.cpu else time.perf_counter
    compile_times = []
    for _ in range(5):
        started = clock()
        compiled = rules.compile_protocol(protocol)
        compile_times.append(clock() - started)
    cohort = subjects(args.n)
    isolated = IsolatedEngine()
    ways = {
        "engine + explanation": lambda s: rules.decide(compiled, s),
        "engine process + explanation": lambda s: rules.decide(compiled, s, isolated),
        "reference + explanation": lambda s: rules.decide_reference(compiled, s),
        "engine, outcomes only": lambda s: rules.outcomes(compiled, s),
        "reference, outcomes only": lambda s: reference_outcomes(compiled, s),
    }
    for way in ways.values():  # warm up: the engine creates its ruleset on first use
        way(cohort[0])
    timings: dict[str, list[float]] = {name: [] for name in ways}
    decisions: Counter[str] = Counter()
    for subject in cohort:
        for name, way in ways.items():
            started = clock()
            result = way(subject)
            timings[name].append(clock() - started)
            if name == "engine + explanation":
                decisions[result.decision] += 1

    engine = default_engine()
    fired = [len(engine.run(compiled, compiled.dictionary.normalize(s).values)[1]) for s in cohort]
    print(f"decide (bench/decide.py): {args.n:,} subjects of NCT07193667, all four cohorts")
    print(f"  clock: {'CPU time of this process' if args.cpu else 'wall clock'}")
    print(
        f"  protocol: {len(compiled.criteria)} criteria, {len(compiled.ruleset)} engine rules, {compiled.stages + 1}"
        f" stages; engine rules fired a subject: mean {statistics.fmean(fired):.1f}, max {max(fired)}"
    )
    print(f"  mix: { {str(k): v for k, v in decisions.items()} }")
    print(f"  compile one version: median {statistics.median(compile_times) * 1000:.0f} ms")
    isolated.close()
    print(f"  {'':30} {'median':>9} {'p99':>9} {'mean':>9}")
    for name, values in timings.items():
        print(
            f"  {name:30} {statistics.median(values) * 1e3:8.3f}ms {percentile(values, 0.99) * 1e3:8.3f}ms"
            f" {statistics.fmean(values) * 1e3:8.3f}ms"
        )
    with_explanation = statistics.median(timings["engine + explanation"]) / statistics.median(
        timings["reference + explanation"]
    )
    bare = statistics.median(timings["engine, outcomes only"]) / statistics.median(timings["reference, outcomes only"])
    floor = statistics.median(timings["reference, outcomes only"])
    production = statistics.median(timings["engine process + explanation"])
    print(f"  engine / reference, with explanation: {with_explanation:.2f}x   outcomes only: {bare:.2f}x")
    print(f"  the service's way (engine process + explanation) / the floor: {production / floor:.1f}x")


if __name__ == "__main__":
    main()
