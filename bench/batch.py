"""Benchmark: a 10,000-row CSV batch (issue 13), decided through the engine pool and stored whole.

    python bench/batch.py               # 10,000 rows
    python bench/batch.py --rows 2000

Builds distinct synthetic subjects (bench/cohort.py) as parsed CSV rows, then, on a fresh SQLite database,
times the two phases of a batch: deciding every row (checked here, normalised, decided and
explained by the engine processes, a chunk at a time) and storing every row in one transaction
with its decision record. Prints rows per second for each and overall, the load average, and the
CPU time a row costs in this process and in the engine processes: on a shared machine the rate
follows the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import children_cpu


def make_rows(count: int) -> list[dict]:
    """The rows as `batch.read` gives them from a CSV (CSV parsing itself is not what is measured)."""
    from bench.cohort import subjects

    rows = []
    for i, subject in enumerate(subjects(count)):
        inputs = {k: v for k, v in subject.items() if k not in ("cohort", "screening_date")}
        envelope = {"subject_id": f"B-{i:06d}", "site": "SITE-1", "cohort": subject["cohort"]}
        rows.append(
            {
                "protocol": "NCT07193667",
                "row": i + 2,
                **envelope,
                "screening_date": subject["screening_date"],
                "inputs": inputs,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    import copy

    from service import batch, create_app
    from service.infra.db import prepare
    from service.infra.models import db

    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.db", "DEMO_ACCOUNTS": False})
        prepare(app)
        with app.app_context():
            template = make_rows(args.rows)
            # Start the engine pool (a batch of POOL_FROM rows or more uses it) and load the version.
            batch.decide_rows(copy.deepcopy(template[: max(batch.POOL_FROM, 10)]))
            rows = copy.deepcopy(template)
            load = os.getloadavg()[0]
            cpu, engines = time.process_time(), children_cpu()
            started = time.perf_counter()
            results = batch.decide_rows(rows)
            decided = time.perf_counter()
            batch.store(results, created_by="bench", key="bench")
            stored = time.perf_counter()
            cpu, engines = time.process_time() - cpu, children_cpu() - engines
            db.session.remove()
    n = len(results)
    print(
        f"{n} rows: decided in {decided - started:.1f} s ({n / (decided - started):,.0f} rows/s), "
        f"stored in {stored - decided:.1f} s ({n / (stored - decided):,.0f} rows/s), "
        f"overall {n / (stored - started):,.0f} rows/s; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(
        f"CPU a row: {cpu / n * 1000:.2f} ms in this process, {engines / n * 1000:.2f} ms in the engine processes"
        f" ({(cpu + engines) / n * 1000:.2f} ms in all)"
    )


if __name__ == "__main__":
    main()
