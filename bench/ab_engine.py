"""A/B of the engine driver on a busy machine: another revision's `rules/engine.py` against this one's, in one process.

    .venv/bin/python bench/ab_engine.py --before main --n 400 --rounds 25
    (--copies 3: the seed's criteria three times, as bench/peer_zen.py)

`bench/peer_zen.py` run in two checkouts one after the other compares runs made minutes apart;
with other work on the machine, its load moves more between them than a driver change moves the
figures. Here the two drivers (the other revision's file loaded as a module beside `rules.engine`,
both over the same vendored C engine and the same compiled protocol) and normalise + ZEN take turns
in blocks of `--n` cohort subjects, `--rounds` times, the order rotated each round; each way's
figure is the best block and the median block of CPU time a subject. The two drivers must give the
same final values, outcomes and fired rules, in order, on every subject, or nothing is timed.
Only the driver differs: normalisation, derivation and the compiler are this checkout's for both.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _driver(revision: str):
    """The driver module of `revision` (`git show <revision>:rules/engine.py`), loaded beside ours."""
    text = subprocess.run(
        ["git", "show", f"{revision}:rules/engine.py"], check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "engine_before.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("engine_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["engine_before"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="the revision whose rules/engine.py is the before")
    parser.add_argument("--n", type=int, default=400, help="subjects per block")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()

    sys.path.insert(0, str(Path.cwd()))
    import zen

    import rules
    from bench.cohort import subjects
    from bench.peer_zen import JDM_PATH, build_jdm, seed_with_copies
    from rules.decision import combine
    from rules.engine import DurableEngine

    before = _driver(args.before)
    compiled = rules.compile_protocol(seed_with_copies(args.copies))
    cohort = subjects(args.n)
    text = JDM_PATH.read_text(encoding="utf-8") if args.copies == 1 else json.dumps(build_jdm(args.copies))
    peer = zen.ZenEngine({"loader": {"type": "static", "content": {"nct": json.loads(text)}}})
    old, new = before.DurableEngine(), DurableEngine()

    def seen(evaluation):
        values, outcomes = evaluation.values, evaluation.outcomes
        return values, list(values), outcomes, list(outcomes), evaluation.fired

    for subject in cohort:
        values = compiled.dictionary.normalize(subject).values
        assert seen(old.evaluate(compiled, values)) == seen(new.evaluate(compiled, values)), subject

    def outcomes(engine):
        def way(subject):
            evaluation = engine.evaluate(compiled, compiled.dictionary.normalize(subject).values)
            return combine(list(evaluation.outcomes.values())), evaluation.outcomes

        return way

    ways = {
        "(a+e) normalise + ZEN": lambda s: peer.evaluate("nct", compiled.dictionary.normalize(s).values),
        f"(b) outcomes, driver of {args.before}": outcomes(old),
        "(b) outcomes, this driver": outcomes(new),
    }
    blocks: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for round_ in range(args.rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            way = ways[name]
            started = time.process_time()
            for subject in cohort:
                way(subject)
            blocks[name].append((time.process_time() - started) / len(cohort))
    print(
        f"{len(compiled.criteria)} criteria; {args.rounds} rounds of {args.n} subjects a way, CPU time a subject"
        f" (best block / median block)"
    )
    zen_name = names[0]
    for name in names:
        best, median = min(blocks[name]), statistics.median(blocks[name])
        ratio = (
            ""
            if name == zen_name
            else f"   / (a+e): {best / min(blocks[zen_name]):.2f}x, {median / statistics.median(blocks[zen_name]):.2f}x"
        )
        print(f"  {name:34} {best * 1e6:7.1f} µs {median * 1e6:7.1f} µs{ratio}")


if __name__ == "__main__":
    main()
