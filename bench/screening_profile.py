"""Where one `POST /api/v1/screenings` spends its time, in-process (Flask test client, SQLite file).

    python bench/screening_profile.py               # 300 requests timed, then 300 under cProfile
    python bench/screening_profile.py --n 500 --top 40
    python bench/screening_profile.py --checkout /work/main   # the same, of another checkout

Times the median request, then profiles the same requests and prints the functions by cumulative
time, and the share of a request spent in each stage of the storing path (deciding, explaining,
encoding, SQL, commit). The engine runs in its own process as in the service: its work shows here
as waiting on the pipe.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import children_cpu

# Stages of the storing path: (label, function name as pstats shows it, file suffix).
STAGES = (
    ("whole request", "post", "werkzeug/test.py"),
    ("check the request", "parse_request", "service/screenings.py"),
    ("normalise units", "normalize", "rules/dictionary.py"),
    ("engine round trip (pipe, engine process)", "evaluate", "rules/isolation.py"),
    ("explain", "explain", "rules/explain.py"),
    ("store: record()", "record", "service/screenings.py"),
    ("hash chain: append()", "append", "service/record.py"),
    ("commit (fsync)", "commit", "sqlalchemy/orm/session.py"),
    ("SQL statements (cursor.execute)", "execute", "sqlalchemy/engine/default.py"),
    ("answer: describe()", "describe", "service/screenings.py"),
    ("answer: jsonify", "jsonify", "flask/json/__init__.py"),
    ("JSON encoding (orjson)", "dumps", "rules/jsonfast.py"),
    ("JSON encoding (json.dumps)", "dumps", "json/__init__.py"),
    ("token lookup (sign-in)", "_load_from_token", "service/auth.py"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--callers", help="also print who calls functions matching this (a pstats pattern)")
    parser.add_argument("--checkout", type=Path, help="profile the service of another checkout (e.g. /work/main)")
    args = parser.parse_args()
    if args.checkout:  # its service, rules and engine process; this script's stages and timing
        sys.path.insert(0, str(args.checkout.resolve()))

    from bench.cohort import subjects
    from service import create_app
    from service.auth import create_user
    from service.infra.db import prepare
    from service.infra.models import db

    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/profile.db", "DEMO_ACCOUNTS": False})
        prepare(app)  # the schema and the seed protocol, as `eligo init-db` makes them
        with app.app_context():
            _, _, token = create_user("profile", "screener", site="SITE-1")
            db.session.commit()
        bodies = []
        for i, subject in enumerate(subjects(args.n * 2)):
            inputs = {k: v for k, v in subject.items() if k not in ("cohort", "screening_date")}
            envelope = {"protocol": "NCT07193667", "subject_id": f"P-{i}", "site": "SITE-1"}
            bodies.append(
                json.dumps({**envelope, "screening_date": "2026-11-02", "cohort": subject["cohort"], "inputs": inputs})
            )
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()

        def post(body: str) -> None:
            answer = client.post("/api/v1/screenings", data=body, content_type="application/json", headers=headers)
            if answer.status_code != 201:
                raise SystemExit(f"{answer.status_code}: {answer.get_data(as_text=True)[:500]}")

        post(bodies[-1])  # warm: the engine process, the compiled version
        times = []
        cpu, engine_cpu = time.process_time(), children_cpu()
        for body in bodies[: args.n]:
            started = time.perf_counter()
            post(body)
            times.append(time.perf_counter() - started)
        cpu, engine_cpu = time.process_time() - cpu, children_cpu() - engine_cpu
        profile = cProfile.Profile()
        profile.enable()
        for body in bodies[args.n :]:
            post(body)
        profile.disable()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    times.sort()
    print(
        f"POST /api/v1/screenings in-process: median {statistics.median(times) * 1000:.2f} ms,"
        f" p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms over {args.n} requests"
    )
    print(
        f"CPU a request: {cpu / args.n * 1000:.2f} ms in this process, {engine_cpu / args.n * 1000:.2f} ms in the"
        f" engine process ({(cpu + engine_cpu) / args.n * 1000:.2f} ms in all); load average {os.getloadavg()[0]:.1f}"
    )
    stats = pstats.Stats(profile)
    whole = None
    print(f"\nstages (cProfile, per request, {args.n} requests; the profiler adds its own overhead):")
    for label, name, suffix in STAGES:
        # The outermost function of that name (SQLAlchemy's commit calls another commit, etc.).
        total = max(
            (
                value[3]
                for (file, _, function), value in stats.stats.items()  # type: ignore[attr-defined]
                if function == name and file.endswith(suffix)
            ),
            default=0.0,
        )
        whole = whole or total
        print(f"  {label:45} {total / args.n * 1000:7.2f} ms  {100 * total / whole:5.1f} %")
    calls = sum(
        value[1]
        for (file, _, function), value in stats.stats.items()  # type: ignore[attr-defined]
        if function == "do_execute" and file.endswith("sqlalchemy/engine/default.py")
    )
    print(f"  SQL statements per request: {calls / args.n:.1f}")
    out = io.StringIO()
    shown = pstats.Stats(profile, stream=out).sort_stats("cumulative")
    shown.print_stats(args.top)
    if args.callers:
        shown.print_callers(args.callers)
    print(out.getvalue())


if __name__ == "__main__":
    main()
