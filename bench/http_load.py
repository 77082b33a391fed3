"""Benchmark: screenings over HTTP under load, beside a storing floor and a bare Flask endpoint, in one run.

    python bench/http_load.py                    # 60 s each, 8 connections, gunicorn with serve's workers
    python bench/http_load.py --seconds 30 --rounds 5 --warmup 15 --before /work/main
    python bench/http_load.py --rounds 5 --before . --before-workers 3    # worker counts, same code

The servers run at once under gunicorn on 127.0.0.1 with the same workers (and threads); wrk
(a second process, from Debian) posts the same screening request to each. The storing
floor (bench/storing.py) parses the request, inserts a JSON row the size of Eligo's
answer into SQLite (write-ahead log, synchronous FULL) and answers it: what storing a
screening costs without deciding it, the yardstick of issue 15 (Eligo at least 0.5x).
The bare endpoint only answers a body of that size: the ceiling. Each is warmed up, then
measured in turn, `--rounds` times, so a load that drifts on a shared machine is shared by
all. Afterwards the screenings stored are counted against the 201s wrk saw, for each Eligo
(by its own user) and the floor. The database is ELIGO_BENCH_DATABASE_URL, or a SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import machine_cpu  # noqa: E402
from service.cli import DEFAULT_WORKERS  # noqa: E402  (after the path: the servers compared use serve's count)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(
    app: str, env: dict[str, str], workers: int, threads: int, log: Path, cwd: Path = ROOT
) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    pool = ["--workers", str(workers), "--threads", str(threads)]  # threads > 1: gunicorn's gthread workers
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *pool, "--preload", app],
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
    busy, elapsed = machine_cpu()
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
    busy, elapsed = (now - then for now, then in zip(machine_cpu(), (busy, elapsed), strict=True))
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    created, other, p50, p99, requests, duration = (int(x) for x in line.split()[1:])
    return {
        "created": created,
        "other": other,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "requests": requests,
        "duration": duration,
        "per_second": requests / (duration / 1e6),
        "busy": busy,
        "elapsed": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="measured seconds per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=1, help="measure the servers in turn, this many times")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=10, help="seconds of load before the measured run")
    parser.add_argument(
        "--before",
        type=Path,
        help="also serve Eligo from this checkout (e.g. `git archive main`), on the same database: before/after",
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="as `eligo serve` (one a core)")
    parser.add_argument(
        "--before-workers", type=int, help="workers of the --before server (default --workers): compare worker counts"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads a worker (gunicorn's gthread workers)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/http_load.py needs the wrk load generator: apt-get install wrk")

    from bench import storing
    from bench.cohort import subjects
    from service import create_app
    from service.auth import create_user
    from service.infra.db import prepare
    from service.infra.models import Screening, db

    servers = [("eligo", "service:create_app()", ROOT)]
    if args.before:
        servers.append(("eligo before", "service:create_app()", args.before.resolve()))
    servers += [("storing floor", "bench.storing:app", ROOT), ("bare flask", "bench.bare:app", ROOT)]
    with tempfile.TemporaryDirectory() as folder:
        database = os.environ.get("ELIGO_BENCH_DATABASE_URL") or f"sqlite:///{folder}/bench.db"
        app = create_app({"DATABASE_URL": database, "DEMO_ACCOUNTS": False})
        prepare(app)
        users: dict[str, tuple[str, str]] = {}  # name: (username, token)
        with app.app_context():  # one user for each Eligo, what each stored is counted by, and one for sizing
            for name in [name for name, target, _ in servers if target.startswith("service")] + ["sizing"]:
                username = f"bench-{name.replace(' ', '-')}-{time.time_ns()}"
                users[name] = (username, create_user(username, "screener", site="SITE-1")[2])
            db.session.commit()
        sizing = users.pop("sizing")[1]
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
        }
        with app.test_client() as client:  # the answer's size, for the floor's and the bare rows (not counted)
            size = len(
                client.post(
                    "/api/v1/screenings",
                    data=body,
                    content_type="application/json",
                    headers={"Authorization": f"Bearer {sizing}"},
                ).data
            )
        env["BARE_BYTES"] = env["STORING_BYTES"] = str(size)
        env["STORING_DATABASE"] = f"{folder}/floor.db"
        storing.create(env["STORING_DATABASE"])
        results: dict[str, dict[str, float]] = {}
        running: dict[str, tuple[subprocess.Popen, int, dict[str, str]]] = {}
        try:
            for name, target, cwd in servers:
                log = Path(folder) / f"{name.replace(' ', '_')}.log"
                own = {**env, "BENCH_TOKEN": users[name][1] if name in users else ""}
                workers = args.before_workers if name == "eligo before" and args.before_workers else args.workers
                server, port = _serve(target, own, workers, args.threads, log, cwd)
                running[name] = (server, port, own)
            # Warm each up first (each worker starts its engine process and compiles the version on its
            # first request): the figures are the steady state. Its 201s count for the stored check.
            for name, (_, port, own) in running.items():
                results[name] = {"warm": _wrk(port, args.warmup, args.connections, own)["created"], "runs": 0}
            # Then the servers in turn, `--rounds` times: a load that drifts (a shared machine) is shared by all.
            share = max(1, args.seconds // args.rounds)
            for _ in range(args.rounds):
                for name, (_, port, own) in running.items():
                    _add(results[name], _wrk(port, share, args.connections, own))
        finally:
            for server, _, _ in running.values():
                server.terminate()
            for server, _, _ in running.values():
                server.wait(timeout=20)
        stored = {}
        with app.app_context():
            for name, (username, _) in users.items():
                stored[name] = db.session.query(Screening).filter_by(created_by=username).count()
            db.session.remove()
            db.engine.dispose()
        with sqlite3.connect(env["STORING_DATABASE"]) as connection:
            stored["storing floor"] = connection.execute("SELECT count(*) FROM screenings").fetchone()[0]

    eligo, floor, bare = results["eligo"], results["storing floor"], results["bare flask"]
    print(
        f"http (bench/http_load.py): {args.seconds} s each in {args.rounds} round(s), {args.connections} connections,"
        f" gunicorn x{args.workers} (threads {args.threads}) on 127.0.0.1, wrk; answer {size:,} bytes"
        + (f"; eligo before: x{args.before_workers}" if args.before and args.before_workers else "")
    )
    print(
        f"  {'':14} {'req/s':>9} {'p50':>9} {'p99':>9} {'201':>8} {'errors':>7} {'CPU/req':>9} {'busy':>5}"
        "   (p50: rounds' median, p99: worst; CPU: the whole machine's, wrk included)"
    )
    for name, r in results.items():
        latency = f"{r['p50_ms']:8.1f}ms {r['p99_ms']:8.1f}ms"
        cpu = f"{_cpu_a_request(r) * 1000:7.2f}ms {r['busy'] / r['elapsed']:5.0%}"
        print(f"  {name:14} {r['per_second']:9.0f} {latency} {r['created']:8} {r['other']:7} {cpu}")
    if args.before:
        before = results["eligo before"]
        print(f"  eligo before / storing floor: {before['per_second'] / floor['per_second']:.2f}")
        # Round by round, each pair measured minutes apart at most: what a drifting host leaves of the change.
        pairs = [now / then for now, then in zip(eligo["rates"], before["rates"], strict=True)]
        shown = " ".join(f"{pair:.2f}" for pair in pairs)
        print(f"  eligo / eligo before, round by round: {shown} (median {statistics.median(pairs):.2f})")
    print(
        f"  eligo / storing floor: {eligo['per_second'] / floor['per_second']:.2f}"
        f"   eligo / bare: {eligo['per_second'] / bare['per_second']:.2f}   load average {os.getloadavg()[0]:.1f}"
    )
    # A rate bounded by CPU cannot pass the machine's cores over one request's CPU, however the waits overlap.
    cores, eligo_cost, floor_cost = os.cpu_count() or 1, _cpu_a_request(eligo), _cpu_a_request(floor)
    print(
        f"  at every core busy: eligo {cores / eligo_cost:.0f} req/s, storing floor {cores / floor_cost:.0f};"
        f" eligo / storing floor {floor_cost / eligo_cost:.2f} (the ratio of CPU a request)"
    )
    for name, count in stored.items():
        result = results[name]
        answered = int(result["created"] + result["warm"])
        verdict = _verdict(count, result, args.connections)
        print(f"  {name}: stored {count} for {answered} answered 201, warm-up included ({verdict})")


def _add(total: dict[str, Any], run: dict[str, float]) -> None:
    """One round's wrk run added to a server's totals: counts and rates summed, p50 the median, p99 the worst."""
    total["runs"] += 1
    for key in ("created", "other", "requests", "duration", "busy", "elapsed"):
        total[key] = total.get(key, 0) + run[key]
    total.setdefault("p50s", []).append(run["p50_ms"])
    total.setdefault("rates", []).append(run["per_second"])
    total["p50_ms"] = statistics.median(total["p50s"])
    total["p99_ms"] = max(total.get("p99_ms", 0.0), run["p99_ms"])
    total["per_second"] = total["requests"] / (total["duration"] / 1e6)


def _cpu_a_request(result: dict[str, Any]) -> float:
    """The machine's busy CPU seconds per request over a server's measured rounds."""
    return result["busy"] / result["requests"]


def _verdict(stored: int, result: dict[str, Any], connections: int) -> str:
    """Requests still in flight when wrk stops are stored but not counted: at most one per connection
    for each wrk run (the warm-up and every round)."""
    answered = int(result["created"] + result["warm"])
    lost = max(0, answered - stored)
    in_flight = (1 + result["runs"]) * connections
    return "none lost" if lost == 0 and stored - answered <= in_flight else f"{lost} LOST"


if __name__ == "__main__":
    main()
