"""The `eligo` command line: the database, protocol files, batch screening, one-off decisions."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask, g

import rules
from rules.errors import EligoError


@contextmanager
def _context() -> Iterator[Flask]:
    """An app context for one command, whose database connections are closed when it ends."""
    from service import create_app
    from service.infra.models import db
    from service.infra.queue import for_app

    app = create_app()
    with app.app_context():
        g.actor = "cli"
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()
            for_app(app).close()


@click.group()
def main() -> None:
    """Eligo: clinical trial eligibility decisions, explained.

    The database is ELIGO_DATABASE_URL (default: SQLite in ./instance/eligo.db).
    """


# One sync worker a core: each has its engine process beside it, so that is already two processes a
# core. On a quiet machine more workers served no more screenings a second (the request is bound by
# CPU) and queued them longer: p99 41 ms with one a core, 62 ms with 1.5, 160-480 ms with two
# (bench/RESULTS.md, issue 15). bench/http_load.py serves every server it compares with this many.
DEFAULT_WORKERS = os.cpu_count() or 1


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=int)
@click.option(
    "--job-threads",
    default=2,
    show_default=True,
    type=click.IntRange(min=0),
    help="Threads of the job worker started beside the web workers (0: none; run `eligo worker` elsewhere).",
)
def serve(host: str, port: int, workers: int, job_threads: int) -> None:
    """Prepare the database (as `eligo init-db`), start a job worker, and serve with gunicorn."""
    from gunicorn.app.wsgiapp import run

    from service.infra.db import prepare

    with _context() as app:
        prepare(app)
        database = app.config["SQLALCHEMY_DATABASE_URI"]
        from service.infra.queue import for_app

        queue_url = for_app(app).url
    click.echo(f"Eligo on http://{host}:{port}/api/v1/protocols  (database {database}, jobs {queue_url})")
    # The job worker is a process of its own (`eligo worker`), started before gunicorn forks: impact
    # replays and big batches run there, never in a web worker, and survive a web worker's restart.
    job_worker = _start_job_worker(job_threads) if job_threads else None
    # --preload: the app starts once in the master (its database prepared above), before the workers fork.
    # Each worker starts its own engine process on its first decision (rules/isolation.py), which
    # is also where the engine's per-ruleset memory is bounded: workers need no recycling.
    sys.argv = ["gunicorn", "--preload", "--bind", f"{host}:{port}", "--workers", str(workers), "service:create_app()"]
    try:
        run()
    finally:
        if job_worker is not None:
            # Stop at once: a job in hand is taken over, from its last chunk, by the next worker to start.
            job_worker.terminate()
            try:
                job_worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                job_worker.kill()


def _start_job_worker(threads: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "service.cli", "worker", "--threads", str(threads)])


@main.command()
@click.option("--threads", default=2, show_default=True, type=click.IntRange(min=1), help="Jobs run at once.")
def worker(threads: int) -> None:
    """Run queued jobs (impact replays, big CSV batches) until stopped; start as many as you like.

    Every worker shares the database and the queue (ELIGO_QUEUE: sqlite:///file beside the SQLite
    database by default, redis://… or postgresql://… for workers on several hosts). A job whose worker
    is killed is taken over by another from its last committed chunk. SIGINT lets the jobs in hand
    finish; SIGTERM stops at once (they are taken over).
    """
    from service.infra.queue import for_app, run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with _context() as app:
        click.echo(f"Eligo job worker, {threads} thread(s), queue {for_app(app).url}", err=True)
        run_worker(app, threads)


@main.command("init-db")
def init_db() -> None:
    """Bring the database to the newest schema and import the seed protocol (safe to repeat)."""
    from service.infra.db import prepare

    with _context() as app:
        prepare(app)
        click.echo(f"database ready: {app.config['SQLALCHEMY_DATABASE_URI']}")


@main.command("protocol-schema")
def protocol_schema() -> None:
    """Print the JSON Schema of protocol files (also in rules/protocol.schema.json), for editors."""
    from rules.protocol import json_schema_text

    click.echo(json_schema_text(), nl=False)


@main.command("import")
@click.argument("protocol_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_file(protocol_file: Path) -> None:
    """Import a protocol file as a new draft version (publish it with `eligo publish`, which signs)."""
    from service import versions
    from service.infra.models import db

    with _context():
        try:
            version = versions.import_definition(rules.load_protocol(protocol_file), created_by="cli")
            db.session.commit()
        except EligoError as error:
            db.session.rollback()
            raise click.ClickException(str(error)) from None
        click.echo(f"{version.protocol.code} version {version.number}: {version.status}")


@main.command("export")
@click.argument("protocol")
@click.argument("version", type=int, required=False)
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def export_file(protocol: str, version: int | None, fmt: str) -> None:
    """Print a version (default: the current published one) as a protocol file."""
    from service import versions

    with _context():
        try:
            found = versions.find_version(protocol, version)
        except versions.VersionError as error:
            raise click.ClickException(error.message) from None
        click.echo(rules.dump_protocol(found.to_definition(), fmt), nl=False)


@main.command()
@click.argument("protocol")
@click.argument("version", type=int)
@click.option("--user", "username", required=True, help="The reviewer who signs; their password is asked for.")
@click.option("--reason", required=True, help="Why this version is approved (recorded with the signature).")
def publish(protocol: str, version: int, username: str, reason: str) -> None:
    """Publish a draft after running its test cases, signed with a reviewer's password."""
    from service import versions
    from service.auth import has_role, sign
    from service.errors import DomainError
    from service.infra.models import User, db

    with _context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one_or_none()
        if user is None or not has_role(user, "reviewer"):
            raise click.ClickException(f"{username!r} is not a reviewer's account")
        password = click.prompt(f"Password of {username} (signs the publication)", hide_input=True)
        try:
            g.actor = username
            versions.publish(versions.find_version(protocol, version), sign(user, password, reason))
            db.session.commit()
        except versions.PublishRefused as refused:
            for failure in refused.failures:
                click.echo(f"  ✗ {failure.name}: expected {failure.expected}, got {failure.got}", err=True)
            raise click.ClickException(refused.message) from None
        except DomainError as refused:  # a refused signature, a stale draft, a version that is not a draft
            raise click.ClickException(refused.message) from None
        click.echo(f"{protocol} version {version} published")


@main.command("screen-csv")
@click.argument("csv_file", type=click.File("r", encoding="utf-8"))
@click.option("--protocol", default=rules.SEED_PROTOCOL, show_default=True)
@click.option("--version", type=int, help="Default: the current published version.")
def screen_csv(csv_file, protocol: str, version: int | None) -> None:
    """Screen every row of a CSV and store the screenings (all rows, or none if any is bad)."""
    from service import batch
    from service.errors import DomainError

    with _context():
        try:
            rows = batch.read(csv_file.read(), protocol, version)
            with click.progressbar(length=len(rows), label="screening", file=sys.stderr) as bar:
                results = batch.decide_rows(rows, progress=bar.update)
            stored = batch.store(results, created_by="cli")
        except DomainError as error:
            for problem in error.problems:
                where = f"row {problem['row']}: " if "row" in problem else ""
                click.echo(
                    f"  {where}{problem.get('field')}: got {problem.get('value')!r}, expected {problem['expected']}",
                    err=True,
                )
            raise click.ClickException(error.message) from None
        counts: dict[str, int] = {}
        for result, screening_id in zip(results, stored, strict=True):
            decided = result.decision["decision"]
            counts[decided] = counts.get(decided, 0) + 1
            click.echo(f"{result.row:>5}  {result.request.subject_id:<16} {decided:<13} #{screening_id}")
        click.echo("; ".join(f"{n} {d}" for d, n in sorted(counts.items())) or "no rows")


@main.command()
@click.argument("subject_file", type=click.File("r"))
@click.option("--protocol", "protocol_file", type=click.Path(exists=True, dir_okay=False), help="A protocol file.")
@click.option("--json", "as_json", is_flag=True, help="Print the full decision as JSON.")
def decide(subject_file, protocol_file: str | None, as_json: bool) -> None:
    """Decide one subject given as a JSON file ('-' for standard input); nothing is stored."""
    try:
        protocol = rules.load_protocol(protocol_file) if protocol_file else rules.seed_protocol()
        decision = rules.decide(rules.compile_protocol(protocol), json.load(subject_file))
    except json.JSONDecodeError as error:
        raise click.ClickException(f"the subject file is not JSON: {error}") from None
    except EligoError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(decision.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"{decision.decision.upper()}  ({decision.protocol} v{decision.version}, {decision.cohort})")
    marks = {"pass": "✓", "fail": "✗", "unknown": "?", "not_applicable": "–"}
    for result in decision.criteria:
        if result.outcome != "not_applicable":
            click.echo(f"  {marks[result.outcome]} {result.code:<11} {result.sentence}")
    if decision.missing:
        click.echo(f"missing: {', '.join(decision.missing)}")


@main.command()
@click.argument("protocol")
@click.argument("before", type=int)
@click.argument("after", type=int)
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
def diff(protocol: str, before: int, after: int, fmt: str) -> None:
    """What changed between two versions, criterion by criterion."""
    from service import amendments, versions

    with _context():
        try:
            result = amendments.protocol_diff(
                versions.find_version(protocol, before), versions.find_version(protocol, after)
            )
        except versions.VersionError as error:
            raise click.ClickException(error.message) from None
        text = (
            json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if fmt == "json" else amendments.markdown(result)
        )
        click.echo(text)


@main.command()
@click.argument("protocol")
@click.argument("before", type=int)
@click.argument("after", type=int)
@click.option("--resume", "resume_id", type=int, help="Carry on this failed or interrupted run instead.")
def impact(protocol: str, before: int, after: int, resume_id: int | None) -> None:
    """Replay the screenings of version BEFORE under AFTER; Ctrl-C cancels (results so far are kept)."""
    from service import impact as impacts
    from service import versions
    from service.infra.models import ImpactRun, db

    with _context():
        try:
            if resume_id is not None:
                earlier = db.session.get(ImpactRun, resume_id)
                if earlier is None:
                    raise click.ClickException(f"no impact run {resume_id}")
                run = impacts.resume(earlier)
            else:
                run = impacts.start(protocol, before, after)
        except versions.VersionError as error:
            raise click.ClickException(error.message) from None
        except impacts.ImpactError as error:
            raise click.ClickException(str(error)) from None
        run_id, total = run.id, run.total - run.processed
        try:
            with click.progressbar(length=total, label=f"replaying {total} screenings", file=sys.stderr) as bar:
                impacts.execute(run_id, progress=bar.update)
        except KeyboardInterrupt:
            impacts.cancel(run)
            click.echo("cancelled", err=True)
        db.session.refresh(run)
        click.echo(f"impact run #{run.id}: {run.status}; {run.changed} of {run.processed} screenings change decision")
        for transition, count in sorted(run.transitions.items()):
            click.echo(f"  {transition:<30} {count}")
        for code, count in sorted(run.criteria.items(), key=lambda item: -item[1]):
            click.echo(f"  caused by {code:<19} {count}")


@main.command()
@click.argument("protocol")
@click.argument("version", type=int)
@click.option("--from", "from_version", type=int, help="Default: the version it was amended from.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv"]), default="markdown", show_default=True)
def summary(protocol: str, version: int, from_version: int | None, fmt: str) -> None:
    """The summary of changes of an amendment."""
    from service import amendments, versions

    with _context():
        try:
            before, after = amendments.versions_to_compare(protocol, version, from_version)
        except versions.VersionError as error:
            raise click.ClickException(error.message) from None
        render = amendments.summary_markdown if fmt == "markdown" else amendments.summary_csv
        click.echo(render(before, after), nl=False)


@main.command()
def verify() -> None:
    """Check the decision record: every stored screening hashed, chained, unchanged. Exit 1 if not."""
    from service.infra.models import db
    from service.record import verify as verify_chain

    with _context():
        result = verify_chain(db.session.connection())
    for problem in result.problems:
        click.echo(f"✗ {problem}", err=True)
    click.echo(f"{result.checked} record(s) checked; head {result.head_seq} {result.head_hash}")
    if not result.intact:
        raise click.ClickException(f"the decision record is broken in {len(result.problems)} place(s)")
    click.echo("the decision record is intact")


if __name__ == "__main__":  # `python -m service.cli worker`: how `eligo serve` starts its job worker
    main()
