"""Benchmark: screenings over HTTP under load, beside a storing floor and a bare Flask endpoint, in one run.

    python bench/http_load.py                    # 60 s each, 8 connections, gunicorn with one worker per core
    python bench/http_load.py --seconds 10

The three servers run under gunicorn on 127.0.0.1 with the same worker count; wrk (a
second process, from Debian) posts the same screening request to each. The storing
floor (bench/storing.py) parses the request, inserts a JSON row the size of Eligo's
answer into SQLite (write-ahead log, synchronous FULL) and answers it: what storing a
screening costs without deciding it, the yardstick of issue 15 (Eligo at least 0.5x).
The bare endpoint only answers a body of that size: the ceiling. Afterwards the
screenings stored are counted against the 201s wrk saw, for Eligo and the floor.
The database is ELIGO_BENCH_DATABASE_URL, or a SQLite file by default.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(app: str, env: dict[str, str], workers: int, log: Path, cwd: Path = ROOT) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--preload", app],
        env=env,
        cwd=cwd,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, port
        time.sleep(0.2)
    raise RuntimeError(log.read_text())


def _wrk(port: int, seconds: int, connections: int, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "screen.lua"),
            f"http://127.0.0.1:{port}/api/v1/screenings",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    created, other, p50, p99, requests, duration = (int(x) for x in line.split()[1:])
    return {
        "created": created,
        "other": other,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "per_second": requests / (duration / 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=10, help="seconds of load before the measured run")
    parser.add_argument(
        "--before",
        type=Path,
        help="also serve Eligo from this checkout (e.g. `git archive main`), on the same database: before/after",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/http_load.py needs the wrk load generator: apt-get install wrk")

    from bench import storing
    from bench.cohort import subjects
    from service import create_app
    from service.auth import create_user
    from service.infra.db import prepare
    from service.infra.models import Screening, db

    with tempfile.TemporaryDirectory() as folder:
        database = os.environ.get("ELIGO_BENCH_DATABASE_URL") or f"sqlite:///{folder}/bench.db"
        app = create_app({"DATABASE_URL": database, "DEMO_ACCOUNTS": False})
        prepare(app)
        with app.app_context():
            _, _, token = create_user(f"bench-{time.time_ns()}", "screener", site="SITE-1")
            db.session.commit()
            before = db.session.query(Screening).count()
        inputs = {k: v for k, v in subjects(1)[0].items() if k not in ("cohort", "screening_date")}
        body = json.dumps(
            {
                "protocol": "NCT07193667",
                "subject_id": "S-BENCH",
                "site": "SITE-1",
                "screening_date": "2026-11-02",
                "cohort": "SLE",
                "inputs": inputs,
            }
        )
        env = {
            **os.environ,
            "ELIGO_DATABASE_URL": database,
            "ELIGO_DEMO_ACCOUNTS": "false",
            "ELIGO_SECRET_KEY": "bench",
            "BENCH_BODY": body,
            "BENCH_TOKEN": token,
        }
        with app.test_client() as client:
            size = len(
                client.post(
                    "/api/v1/screenings",
                    data=body,
                    content_type="application/json",
                    headers={"Authorization": f"Bearer {token}"},
                ).data
            )
        env["BARE_BYTES"] = env["STORING_BYTES"] = str(size)
        env["STORING_DATABASE"] = f"{folder}/floor.db"
        storing.create(env["STORING_DATABASE"])
        results = {}
        servers = [("eligo", "service:create_app()", ROOT)]
        if args.before:
            servers.append(("eligo before", "service:create_app()", args.before.resolve()))
        servers += [("storing floor", "bench.storing:app", ROOT), ("bare flask", "bench.bare:app", ROOT)]
        for name, target, cwd in servers:
            log = Path(folder) / f"{name.replace(' ', '_')}.log"
            server, port = _serve(target, env, args.workers, log, cwd)
            try:
                # Warm up first (each worker starts its engine process and compiles the version on its
                # first request): the figures are the steady state. Its 201s count for the stored check.
                warm = _wrk(port, args.warmup, args.connections, env)["created"]
                results[name] = _wrk(port, args.seconds, args.connections, env)
                results[name]["warm"] = warm
            finally:
                server.terminate()
                server.wait(timeout=20)
            if name == "eligo":  # counted before another server stores into the same database
                with app.app_context():
                    stored = db.session.query(Screening).count() - before - 1  # minus the sizing request
                    db.session.remove()
                    db.engine.dispose()
        with sqlite3.connect(env["STORING_DATABASE"]) as connection:
            floor_stored = connection.execute("SELECT count(*) FROM screenings").fetchone()[0]

    eligo, floor, bare = results["eligo"], results["storing floor"], results["bare flask"]
    print(
        f"http (bench/http_load.py): {args.seconds} s each, {args.connections} connections,"
        f" gunicorn x{args.workers} on 127.0.0.1, wrk; answer {size:,} bytes"
    )
    print(f"  {'':14} {'req/s':>9} {'p50':>9} {'p99':>9} {'201':>8} {'errors':>7}")
    for name, r in results.items():
        latency = f"{r['p50_ms']:8.1f}ms {r['p99_ms']:8.1f}ms"
        print(f"  {name:14} {r['per_second']:9.0f} {latency} {r['created']:8} {r['other']:7}")
    if args.before:
        print(f"  eligo before / storing floor: {results['eligo before']['per_second'] / floor['per_second']:.2f}")
    print(
        f"  eligo / storing floor: {eligo['per_second'] / floor['per_second']:.2f}"
        f"   eligo / bare: {eligo['per_second'] / bare['per_second']:.2f}   load average {os.getloadavg()[0]:.1f}"
    )
    for name, count, result in (("eligo", stored, eligo), ("floor", floor_stored, floor)):
        answered = int(result["created"] + result["warm"])
        verdict = _verdict(count, result, args.connections)
        print(f"  {name}: stored {count} for {answered} answered 201, warm-up included ({verdict})")


def _verdict(stored: int, result: dict[str, float], connections: int) -> str:
    """Requests still in flight when wrk stops are stored but not counted: at most one per connection,
    twice (the warm-up and the measured run)."""
    answered = int(result["created"] + result["warm"])
    lost = max(0, answered - stored)
    return "none lost" if lost == 0 and stored - answered <= 2 * connections else f"{lost} LOST"


if __name__ == "__main__":
    main()
