"""Benchmark: impact replay of a large screening log (issue 5).

    python bench/replay.py              # 100,000 stored screenings
    python bench/replay.py --n 20000

Builds a SQLite screening log under NCT07193667 version 1 (distinct subjects are
decided for real; the log repeats them under new subject ids), drafts version
2 with a stricter ANC threshold, and replays the whole log under it in a fresh
process, so the peak memory printed is the replay's own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(database: str, n: int, distinct: int) -> None:
    from sqlalchemy import insert

    import rules
    from bench.cohort import subjects
    from service import create_app, versions
    from service.infra.db import prepare
    from service.infra.models import Screening, db

    app = create_app({"DATABASE_URL": database})
    prepare(app)
    with app.app_context():
        version = versions.find_version("NCT07193667", 1)
        compiled = rules.compile_protocol(version.to_definition())
        decided = []
        for subject in subjects(distinct):
            decision = rules.decide(compiled, subject)
            inputs = {k: v for k, v in subject.items() if k not in ("cohort", "screening_date")}
            decided.append((subject, inputs, json.loads(json.dumps(decision.to_dict()))))
        rows = []
        for i in range(n):
            subject, inputs, result = decided[i % distinct]
            rows.append(
                {
                    "protocol_id": version.protocol_id,
                    "version_id": version.id,
                    "content_hash": version.content_hash,
                    "subject_id": f"S-{i:06d}",
                    "site": f"SITE-{i % 12}",
                    "cohort": subject["cohort"],
                    "screening_date": rules.protocol.yaml.safe_load(subject["screening_date"]),
                    "inputs": inputs,
                    "decision": result["decision"],
                    "result": result,
                }
            )
            if len(rows) == 5000:
                db.session.execute(insert(Screening), rows)
                rows = []
        if rows:
            db.session.execute(insert(Screening), rows)
        draft = versions.amend("NCT07193667", 1)
        criterion = next(c for c in draft.criteria if c.code == "IN-03b")
        criterion.rule = criterion.rule.replace("anc >= 1 x10^9/L", "anc >= 1.5 x10^9/L")
        db.session.commit()
        db.engine.dispose()


def memory_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, in MB.

    Not getrusage's ru_maxrss: Linux carries it over execve from the parent, so a child
    started by a large parent would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def replay(database: str) -> None:
    """Run in its own process: replay and report throughput and this process's peak memory."""
    from service import create_app, impact
    from service.infra.models import db

    app = create_app({"DATABASE_URL": database})
    with app.app_context():
        baseline = memory_mb("VmRSS")
        run = impact.start("NCT07193667", 1, 2)
        started = time.perf_counter()
        run = impact.execute(run.id)
        seconds = time.perf_counter() - started
        peak = memory_mb("VmHWM")
        print(
            json.dumps(
                {
                    "screenings": run.processed,
                    "changed": run.changed,
                    "transitions": run.transitions,
                    "seconds": seconds,
                    "per_second": run.processed / seconds,
                    "peak_rss_mb": peak,
                    "rss_growth_mb": peak - baseline,
                }
            )
        )
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="stored screenings to replay")
    parser.add_argument("--distinct", type=int, default=2_000, help="distinct subjects decided to build the log")
    parser.add_argument("--replay-only", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_only:
        replay(args.replay_only)
        return
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{folder}/bench.db"
        started = time.perf_counter()
        build(database, args.n, min(args.distinct, args.n))
        print(
            f"built a log of {args.n:,} screenings in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        output = subprocess.run(
            [sys.executable, __file__, "--replay-only", database], check=True, capture_output=True, text=True
        ).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    print("impact replay (bench/replay.py)")
    print(f"  screenings replayed   {figures['screenings']:>10,}")
    print(f"  decisions changed     {figures['changed']:>10,}  {figures['transitions']}")
    print(f"  time                  {figures['seconds']:>10.1f} s")
    print(f"  screenings per second {figures['per_second']:>10,.0f}")
    growth = f"grew {figures['rss_growth_mb']:.0f} MB while replaying"
    print(f"  peak memory (RSS)     {figures['peak_rss_mb']:>10.0f} MB  ({growth})")


if __name__ == "__main__":
    main()
