"""Benchmark: process memory over many compiles of draft versions.

    python bench/compile_memory.py           # 1,000 drafts
    python bench/compile_memory.py --n 200

Each draft differs by one threshold, so each is a new ruleset. Measured side by
side, in two fresh processes: compiling only (the Python side), and compiling
and loading each draft into the durable-rules engine, which upstream reports
never frees a ruleset (jruizgit/rules #137, #371).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def run(n: int, load: bool) -> dict[str, float]:
    import rules
    from rules.engine import DurableEngine
    from rules.protocol import from_dict

    base = rules.seed_protocol().to_dict()
    engine = DurableEngine()
    rules.compile_protocol(from_dict(base))  # warm caches (pint, lark) before the baseline
    start, started = rss_mb(), time.perf_counter()
    samples = []
    for i in range(n):
        data = json.loads(json.dumps(base, default=str))
        data["criteria"][2]["rule"] = f"wbc >= {3 + i / 10_000:.4f} x10^9/L"
        compiled = rules.compile_protocol(from_dict(data))
        if load:
            engine.load(compiled)
        if i % max(1, n // 10) == 0:
            samples.append(round(rss_mb() - start, 1))
    return {"seconds": time.perf_counter() - started, "growth_mb": rss_mb() - start, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000)
    parser.add_argument("--child", choices=["compile", "load"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.n, args.child == "load")))
        return
    print(f"draft compiles (bench/compile_memory.py): {args.n:,} drafts, each in a fresh process per mode")
    for mode, label in (("compile", "compile only"), ("load", "compile + load into the engine")):
        out = subprocess.run(
            [sys.executable, __file__, "--n", str(args.n), "--child", mode], check=True, capture_output=True, text=True
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        per = figures["seconds"] / args.n * 1000
        print(
            f"  {label:32} {per:6.1f} ms each   memory grew {figures['growth_mb']:7.1f} MB"
            f"   (every {max(1, args.n // 10)}: {figures['samples']})"
        )


if __name__ == "__main__":
    main()
