"""Benchmark: process memory over many compiles of draft versions.

    python bench/compile_memory.py           # 1,000 drafts
    python bench/compile_memory.py --n 200

Each draft differs by one threshold, so each is a new ruleset. Measured side by
side, in fresh processes: compiling only (the Python side); in-process, each draft
compiled, loaded into the durable-rules engine, one subject decided, and the draft
before it deleted from the engine (upstream never gave a ruleset's memory back,
jruizgit/rules #137, #371; the vendored engine does, vendor/durable-rules/PATCHES.md);
and the service's way, the registry (most recently used 32) with the drafts' engine
process (which keeps the last 4 rulesets), deciding one subject under each draft, as a
preview does. For the service the memory is the web process's plus its engine process's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def run(n: int, mode: str) -> dict[str, float]:
    import rules
    from bench.cohort import subjects
    from rules.engine import DurableEngine
    from rules.isolation import IsolatedEngine
    from rules.protocol import from_dict
    from service.infra.registry import Registry

    base = rules.seed_protocol().to_dict()
    engine, isolated, registry = DurableEngine(), IsolatedEngine(timeout=60, max_rulesets=4), Registry()
    subject = subjects(1)[0]
    warm = rules.compile_protocol(from_dict(base))  # warm caches (pint, lark) before the baseline
    if mode == "service":
        rules.decide(warm, subject, isolated)
    elif mode == "inprocess":
        rules.decide(warm, subject, engine)
        engine.unload(warm)
    previous = None

    def memory() -> float:
        return rss_mb() + (rss_mb(isolated.pid) if mode == "service" and isolated.pid else 0.0)

    start, started = memory(), time.perf_counter()
    samples, peak = [], 0.0
    for i in range(n):
        data = json.loads(json.dumps(base, default=str))
        data["criteria"][2]["rule"] = f"wbc >= {3 + i / 10_000:.4f} x10^9/L"
        if mode == "service":
            rules.decide(registry.compile(from_dict(data)), subject, isolated)
        else:
            compiled = rules.compile_protocol(from_dict(data))
            if mode == "inprocess":
                rules.decide(compiled, subject, engine)
                if previous is not None:
                    engine.unload(previous)  # the draft this edit superseded
                previous = compiled
        peak = max(peak, memory() - start)
        if i % max(1, n // 10) == 0:
            samples.append(round(memory() - start, 1))
    growth = memory() - start
    isolated.close()
    return {"seconds": time.perf_counter() - started, "growth_mb": growth, "peak_mb": peak, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000)
    parser.add_argument("--child", choices=["compile", "inprocess", "service"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.n, args.child)))
        return
    print(f"draft compiles (bench/compile_memory.py): {args.n:,} drafts, each mode in a fresh process")
    modes = (
        ("compile", "compile only", args.n),
        ("inprocess", "in-process: load, decide, delete", args.n),
        ("service", "service: registry + engine process", args.n),
    )
    for mode, label, n in modes:
        out = subprocess.run(
            [sys.executable, __file__, "--n", str(n), "--child", mode], check=True, capture_output=True, text=True
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        per = figures["seconds"] / n * 1000
        print(
            f"  {label:36} {n:5} drafts {per:6.1f} ms each   grew {figures['growth_mb']:7.1f} MB"
            f" (peak {figures['peak_mb']:7.1f})   every {max(1, n // 10)}: {figures['samples']}"
        )


if __name__ == "__main__":
    main()
