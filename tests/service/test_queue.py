"""The job queue: messages in JSON, its setting, and jobs that survive their worker (service/queue.py)."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from huey import RedisHuey, SqliteHuey
from huey.registry import Message
from sqlalchemy import select, update

from service import impact
from service.infra import queue
from service.infra.models import BatchRun, ImpactChange, ImpactRun, db
from tests.service.test_amendments import ANC_VALUES, SEED, _amend_anc, _screen
from tests.service.test_batch import GOOD

BATCH_URL = "/api/v1/screenings/batch?protocol=NCT07193667"


def _message(**changes) -> Message:
    fields = {"id": "a1", "name": "eligo.impact", "retries": 0, "retry_delay": 0, "args": (7, 2), "kwargs": {}}
    return Message(**{**fields, **changes})


def test_messages_travel_as_json_and_come_back_whole():
    serializer = queue.JsonSerializer()
    message = _message(eta=dt.datetime(2026, 11, 28, 20, 0, 1), expires_resolved=dt.datetime(2026, 11, 29))
    data = serializer.serialize(message)
    assert data.startswith(b"{") and b'"args":[7,2]' in data
    assert serializer.deserialize(data) == message


@pytest.mark.parametrize(
    "value",
    [{"not": "a message"}, _message(on_complete=_message())],
    ids=["not a message", "a pipeline"],
)
def test_what_json_cannot_carry_plainly_is_refused(value):
    with pytest.raises(queue.QueueError):
        queue.JsonSerializer().serialize(value)


def test_a_pickled_message_is_refused_not_unpickled():
    with pytest.raises(queue.QueueError, match="not one of Eligo's"):
        queue.JsonSerializer().deserialize(pickle.dumps(_message()))


def test_the_queue_is_a_file_beside_the_sqlite_database_unless_set(tmp_path):
    from service import create_app

    def url(**config) -> str:
        app = create_app({"TESTING": True, "SECRET_KEY": "t", **config})
        return queue.for_app(app).url

    assert url(DATABASE_URL=f"sqlite:///{tmp_path}/trial.db") == f"sqlite:///{tmp_path}/trial-queue.db"
    assert url(DATABASE_URL="postgresql+psycopg://db.internal/eligo").endswith("/instance/eligo-queue.db")
    redis_url = "redis://127.0.0.1:1/0"
    assert url(DATABASE_URL="postgresql+psycopg://db.internal/eligo", QUEUE=redis_url) == redis_url
    assert isinstance(queue.make_huey(f"sqlite:///{tmp_path}/q.db"), SqliteHuey)
    assert isinstance(queue.make_huey(redis_url), RedisHuey)  # connects on first use only


def test_an_unknown_queue_setting_says_what_is_expected():
    with pytest.raises(queue.QueueError, match=r"QUEUE is 'amqp://x'; expected sqlite:///.*redis://"):
        queue.make_huey("amqp://x")


def _dead_worker() -> str:
    child = subprocess.Popen(["true"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}"


@pytest.fixture
def amended(app, client, subject) -> int:
    """A log of 48 screenings under v1, and draft v2 with a stricter ANC threshold: the count of the log."""
    for i in range(6):
        for j, anc in enumerate(ANC_VALUES):
            _screen(client, subject, f"S-{i}-{j}", anc=anc)
    _amend_anc(app, client)
    return 6 * len(ANC_VALUES)


def _reference(app) -> dict:
    """The same replay, run whole in this process: what any interrupted run must end with."""
    with app.app_context():
        run = impact.execute(impact.start("NCT07193667", 1, 2).id)
        changed = db.session.execute(select(ImpactChange.screening_id).where(ImpactChange.run_id == run.id))
        return {**_figures(run), "screenings": sorted(changed.scalars())}


def _figures(run: ImpactRun) -> dict:
    return {
        "status": run.status,
        "processed": run.processed,
        "changed": run.changed,
        "transitions": run.transitions,
        "criteria": run.criteria,
    }


def _outcome(app, run_id: int) -> dict:
    with app.app_context():
        run = db.session.get(ImpactRun, run_id)
        changed = list(db.session.execute(select(ImpactChange.screening_id).where(ImpactChange.run_id == run_id)))
        ids = [row.screening_id for row in changed]
        assert len(ids) == len(set(ids)), "a screening was replayed into the result twice"
        return {**_figures(run), "screenings": sorted(ids)}


def test_a_sweep_hands_a_dead_workers_replay_to_a_new_attempt_from_its_cursor(app, amended, monkeypatch):
    monkeypatch.setitem(app.config, "IMPACT_CHUNK", 5)
    expected = _reference(app)
    with app.app_context():
        run = impact.start("NCT07193667", 1, 2)
        run_id, calls = run.id, []
        real = impact.rules.outcomes_many

        def dies_after_two_chunks(*args):
            calls.append(1)
            if len(calls) > 2:
                raise SystemExit("killed")  # as far as the run row can tell, a process that vanished
            return real(*args)

        monkeypatch.setattr(impact.rules, "outcomes_many", dies_after_two_chunks)
        with pytest.raises(SystemExit):
            impact.execute(run_id)
        db.session.rollback()
        monkeypatch.setattr(impact.rules, "outcomes_many", real)
        db.session.execute(update(ImpactRun).where(ImpactRun.id == run_id).values(worker=_dead_worker()))
        db.session.commit()
        assert (db.session.get(ImpactRun, run_id).processed, db.session.get(ImpactRun, run_id).status) == (
            10,
            "running",
        )
        assert queue.sweep() == 1  # inline here (IMPACT_INLINE): the new attempt runs to the end
        assert db.session.get(ImpactRun, run_id).attempt == 2
    assert _outcome(app, run_id) == expected


def test_a_replay_whose_worker_is_only_slow_cannot_commit_after_a_takeover(app, amended):
    with app.app_context():
        run = impact.start("NCT07193667", 1, 2)
        run_id = run.id
        assert queue.claim(ImpactRun, run_id, 1)
        impact.resume(db.session.get(ImpactRun, run_id))  # attempt 2 takes over; attempt 1 is still "alive"
        late = impact.execute(run_id, 1)
        assert (late.attempt, late.processed) == (2, 0)  # attempt 1 could not even claim it
        assert impact.execute(run_id, 2).status == "done"


def _until(what: Callable[[], bool], seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.05)
    raise AssertionError(failure)


def _run_row(app, run_id: int) -> ImpactRun:
    with app.app_context():
        run = db.session.get(ImpactRun, run_id)
        db.session.expunge(run)
        db.session.remove()
        return run


@pytest.fixture
def redis_url():
    """A Redis server of this test's own on 127.0.0.1, with nothing saved to disk."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline and server.poll() is None, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def broker_url(request, database_url, queue_url) -> str:
    """The queue a test's parameter names: the SQLite file, a Redis server, or the PostgreSQL database."""
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    if request.param == "postgresql":
        if not database_url.startswith("postgresql"):
            pytest.skip("the tests run on SQLite (ELIGO_TEST_DATABASE_URL names a PostgreSQL server)")
        return database_url
    return queue_url


@pytest.mark.parametrize("broker_url", ["sqlite", "redis", "postgresql"], indirect=True)
def test_two_workers_share_a_replay_one_is_killed_the_other_finishes_it(
    make_app, amended, queue_worker, broker_url, client_for
):
    settings = {"QUEUE": broker_url}
    app = make_app(IMPACT_INLINE=False, **settings)
    expected = _reference(app)
    slow = {
        "ENGINE_CHILD_MAIN": "tests.service.slow_engine:serve",
        "ENGINE_REPLAY_PROCESSES": "1",
        "IMPACT_CHUNK": "4",
        "QUEUE_SWEEP_SECONDS": "0.3",
        **settings,
    }
    workers = {worker.pid: worker for worker in (queue_worker(**slow), queue_worker(**slow))}
    client = client_for(app, "reviewer")
    started = client.post(f"{SEED}/impact", json={"from": 1, "to": 2})
    assert started.status_code == 202
    run_id = started.get_json()["id"]

    def half_way() -> bool:
        run = _run_row(app, run_id)
        return run.worker is not None and 8 <= run.processed <= amended - 16

    _until(half_way, 120, "no worker got half-way through the run")
    first = _run_row(app, run_id)
    victim = int(first.worker.rpartition(":")[2])
    assert victim in workers
    os.kill(victim, signal.SIGKILL)
    workers[victim].wait(timeout=10)
    _until(lambda: _run_row(app, run_id).status != "running", 120, "the other worker never finished the run")
    last = _run_row(app, run_id)
    (survivor,) = set(workers) - {victim}
    assert (last.attempt, int(last.worker.rpartition(":")[2])) == (2, survivor)
    assert _outcome(app, run_id) == expected
    assert expected["processed"] == amended and expected["changed"] > 0


def test_jobs_sent_while_no_worker_runs_are_done_once_one_starts(make_app, amended, queue_worker, client_for):
    app = make_app(IMPACT_INLINE=False, BATCH_INLINE_ROWS=2)
    expected = _reference(app)
    reviewer, admin = client_for(app, "reviewer"), client_for(app, "admin")
    run_id = reviewer.post(f"{SEED}/impact", json={"from": 1, "to": 2}).get_json()["id"]
    batch = admin.post(BATCH_URL, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "queued"})
    assert batch.status_code == 202
    time.sleep(1)
    assert _run_row(app, run_id).processed == 0 and admin.get(batch.headers["Location"]).get_json()["processed"] == 0

    queue_worker()

    def both_done() -> bool:
        return (
            _run_row(app, run_id).status != "running"
            and admin.get(batch.headers["Location"]).get_json()["status"] != "running"
        )

    _until(both_done, 120, "the worker did not do the queued jobs")
    assert _outcome(app, run_id) == expected
    stored = admin.get(batch.headers["Location"]).get_json()
    assert (stored["status"], stored["stored"], stored["screened"]) == ("done", True, 3)
    with app.app_context():
        assert db.session.execute(select(BatchRun.attempt)).scalar_one() == 1


def test_serve_starts_a_job_worker_beside_gunicorn_and_stops_it_after(
    make_app, database_url, queue_url, monkeypatch, client_for
):
    from gunicorn.app import wsgiapp

    from service import cli

    # The worker serve starts and the app the test posts to share this test's queue, whatever the database.
    settings = {"DATABASE_URL": database_url, "QUEUE": queue_url, "DEMO_ACCOUNTS": "false", "SECRET_KEY": "t"}
    for name, value in settings.items():
        monkeypatch.setenv(f"ELIGO_{name}", value)
    started: list[subprocess.Popen] = []
    real_start = cli._start_job_worker
    monkeypatch.setattr(cli, "_start_job_worker", lambda threads: started.append(real_start(threads)) or started[-1])
    served: list[list[str]] = []

    def gunicorn_serving_a_big_batch() -> None:
        """While "gunicorn" serves, a big batch sent to the app is done by the job worker serve started."""
        served.append(list(cli.sys.argv))
        app = make_app(BATCH_INLINE_ROWS=2)
        client = client_for(app, "admin")
        accepted = client.post(BATCH_URL, data=GOOD, content_type="text/csv")
        assert accepted.status_code == 202
        location = accepted.headers["Location"]
        _until(lambda: client.get(location).get_json()["status"] == "done", 120, "the job worker did not run it")

    monkeypatch.setattr(wsgiapp, "run", gunicorn_serving_a_big_batch)
    result = CliRunner().invoke(cli.main, ["serve", "--workers", "1", "--job-threads", "1"])
    assert result.exit_code == 0, result.output
    assert "jobs sqlite:///" in result.output
    assert served[0][:2] == ["gunicorn", "--preload"]
    (worker,) = started
    assert worker.args[-3:] == ["worker", "--threads", "1"]
    assert worker.poll() is not None  # stopped with gunicorn
