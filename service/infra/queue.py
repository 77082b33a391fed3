"""The job queue: impact replays and big CSV batches run as Huey tasks, on whichever worker is free.

One setting, QUEUE (ELIGO_QUEUE), names where the messages wait:
- `sqlite:///path/queue.db`: embedded, nothing to start (the default: a file beside the SQLite
  database, `<name>-queue.db`, or `eligo-queue.db` in the instance folder); workers on this host.
- `redis://host:6379/0`: Redis, for workers on several hosts.
- `postgresql://user@host/db`: PostgreSQL (Huey's own tables, through psycopg 3).

A message says only "run attempt N of job R"; the job's row (ImpactRun, BatchRun) holds the rest: its
chunk cursor or rows, its status, and a lease, the process that claimed the attempt (`worker`, host:pid)
and its `heartbeat_at`, renewed with each chunk it commits. Huey forgets a message once a worker takes
it, so it is the lease, not Huey's retries, that brings back a killed worker's job: every worker sweeps
the running jobs every QUEUE_SWEEP_SECONDS (default 5) and hands one whose lease ran out (no heartbeat
for QUEUE_LEASE_SECONDS, default 120; at once if its process is known dead on this host) to a new
attempt, enqueued for whoever is free. The attempt number is in every write a job makes, so an older
attempt that was only slow can never commit over the newer one. After QUEUE_MAX_ATTEMPTS takeovers
(default 3) the job fails instead, as a job that kills its worker every time would otherwise loop.

Messages are JSON (task name, ids, timings), never pickle: nothing read from the broker runs as code.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey
from huey.registry import Message
from huey.serializer import Serializer
from sqlalchemy import or_, select, update

from rules.errors import EligoError
from service.infra.db import changed
from service.infra.models import db, utcnow
from service.vocabulary import RunStatus

log = logging.getLogger("eligo.queue")

RUNNING = RunStatus.RUNNING
_DATES = ("eta", "expires", "expires_resolved")


class QueueError(EligoError):
    """The queue setting cannot be used, or a message is not one of ours."""


class JsonSerializer(Serializer):
    """Huey's messages as JSON: a task name, its arguments (ids), and Huey's timing fields.

    Pipelines, chords and stored results are not used here, and are refused rather than pickled.
    """

    def _serialize(self, data: Any) -> bytes:
        if not isinstance(data, Message):
            raise QueueError(f"the queue carries task messages only, not {type(data).__name__}")
        if data.on_complete is not None or data.on_error is not None or data.chord_config is not None:
            raise QueueError("the queue carries single tasks only, without pipelines or chords")
        fields = data._asdict()
        for name in ("on_complete", "on_error", "chord_config"):
            del fields[name]
        for name in _DATES:
            if isinstance(fields[name], dt.datetime):
                fields[name] = {"datetime": fields[name].isoformat()}
        return json.dumps(fields, separators=(",", ":")).encode()

    def _deserialize(self, data: bytes) -> Message:
        try:
            fields = json.loads(data)
            for name in _DATES:
                if isinstance(fields.get(name), dict):
                    fields[name] = dt.datetime.fromisoformat(fields[name]["datetime"])
            fields["args"] = tuple(fields.get("args") or ())
            return Message(**fields)
        except (ValueError, TypeError, KeyError) as error:
            raise QueueError(f"a queue message is not one of Eligo's: {error}") from None


def make_huey(url: str) -> Huey:
    """The Huey instance for a QUEUE URL."""
    options: dict[str, Any] = {"name": "eligo", "results": False, "serializer": JsonSerializer(), "utc": True}
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        return SqliteHuey(filename=str(path), fsync=True, **options)
    if scheme in ("redis", "rediss", "unix"):
        return RedisHuey(url=url, **options)
    if scheme in ("postgresql", "postgres"):
        return PostgresHuey(dsn=url.replace("+psycopg", "", 1), **options)
    raise QueueError(f"QUEUE is {url!r}; expected sqlite:///path/to/queue.db, redis://host:port/db or postgresql://…")


def queue_url(app: Flask) -> str:
    """QUEUE, or a file beside the SQLite database (in the instance folder if the database is elsewhere)."""
    if app.config.get("QUEUE"):
        return str(app.config["QUEUE"])
    database = str(app.config["SQLALCHEMY_DATABASE_URI"])
    if database.startswith("sqlite:///") and ":memory:" not in database:
        path = Path(database.removeprefix("sqlite:///").split("?", 1)[0])
        return f"sqlite:///{path.with_name(f'{path.stem}-queue.db')}"
    return f"sqlite:///{Path(app.instance_path) / 'eligo-queue.db'}"


@dataclass(frozen=True)
class JobKind:
    """What the queue needs to know of one kind of job (service/impact.py, service/batch_jobs.py)."""

    name: str
    model: Any  # the run's model: id, status, attempt, worker, heartbeat_at
    execute: Callable[[int, int], Any]  # (run id, attempt): runs the attempt if it can claim it
    inline_setting: str  # the setting that runs the job in the caller instead (tests, the CLI)
    restart: dict[str, Any]  # what a new attempt resets besides the lease
    give_up: Callable[[int, int, str], None]  # (run id, attempt, why): fail the job for good


_kinds: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    _kinds[kind.name] = kind


class Queue:
    """One app's queue: its Huey instance (made on first use, so a forking server never shares its
    connections) with a task per kind of job, each running in an app context of its own."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.url = queue_url(app)
        self._huey: Huey | None = None
        self._lock = threading.Lock()
        self._tasks: dict[str, Any] = {}

    @property
    def huey(self) -> Huey:
        with self._lock:
            if self._huey is None:
                huey = make_huey(self.url)
                for name in _kinds:
                    self._tasks[name] = huey.task(name=f"eligo.{name}")(self._runner(name))
                self._huey = huey
            return self._huey

    def _runner(self, name: str) -> Callable[[int, int], None]:
        def run(run_id: int, attempt: int) -> None:
            with self.app.app_context():
                try:
                    _kinds[name].execute(run_id, attempt)
                finally:
                    db.session.remove()

        return run

    def enqueue(self, name: str, run_id: int, attempt: int) -> None:
        self.huey.enqueue(self._tasks[name].s(run_id, attempt))

    def close(self) -> None:
        """Let go of the broker's connections (the app is done with, or this process is about to end)."""
        with self._lock:
            if self._huey is not None:
                self._huey.storage.close()
                pool = getattr(self._huey.storage, "pool", None)  # Redis
                if pool is not None:
                    pool.disconnect()


def init_app(app: Flask) -> None:
    from service import batch_jobs, impact  # noqa: F401  (each registers its kind of job)

    app.extensions["eligo.queue"] = Queue(app)


def for_app(app: Flask | None = None) -> Queue:
    return (app or current_app).extensions["eligo.queue"]


def dispatch(name: str, run_id: int, attempt: int) -> None:
    """Run a job's attempt: in the caller if its inline setting says so, on the queue otherwise."""
    kind = _kinds[name]
    if current_app.config.get(kind.inline_setting):
        kind.execute(run_id, attempt)
        return
    try:
        for_app().enqueue(name, run_id, attempt)
    except Exception:  # the broker is away: the job stays unclaimed, and a sweep sends it again
        log.exception("%s %s could not be queued; a worker's sweep will send it again", name, run_id)


def this_worker() -> str:
    """The process running a job, as its lease records it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:300]


def worker_gone(worker: str | None) -> bool:
    """Whether the process that claimed a job is known to be dead (it ran on this host)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(model: Any, run_id: int, attempt: int) -> bool:
    """Take an attempt nobody has claimed yet; committed, so other workers see the lease."""
    result = changed(
        update(model)
        .where(model.id == run_id, model.attempt == attempt, model.status == RUNNING, model.worker.is_(None))
        .values(worker=this_worker(), heartbeat_at=utcnow())
    )
    db.session.commit()
    return result == 1


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=current_app.config["QUEUE_LEASE_SECONDS"])


def rescue(name: str, run: Any) -> bool:
    """Hand a running job whose worker stopped to a new attempt; send an unclaimed one again.

    `run` is the job's row, or a row of its id, status, attempt, worker and heartbeat_at. An
    unclaimed job is normally a message waiting for a free worker; one unclaimed for a whole lease
    may have been lost (its worker killed right after taking it), so it is sent again: a duplicate
    finds the job claimed or finished and does nothing. Returns whether the job was handed on.
    """
    kind, model = _kinds[name], _kinds[name].model
    if run.status != RUNNING:
        return False
    # Read once: every commit below expires the run object.
    run_id, attempt, worker, now = run.id, run.attempt, run.worker, utcnow()
    expired = or_(model.heartbeat_at.is_(None), model.heartbeat_at < now - _lease())
    same = (model.id == run_id, model.attempt == attempt, model.status == RUNNING)
    if worker is None:
        unclaimed = update(model).where(*same, model.worker.is_(None), expired)
        resent = changed(unclaimed.values(heartbeat_at=now)) == 1
        db.session.commit()
        if resent:
            log.warning("%s %s: not started after a lease; sent to the queue again", name, run_id)
            dispatch(name, run_id, attempt)
        return resent
    stale = [] if worker_gone(worker) else [expired]
    if attempt >= current_app.config["QUEUE_MAX_ATTEMPTS"]:
        if db.session.execute(select(model.id).where(*same, model.worker == worker, *stale)).first():
            kind.give_up(run_id, attempt, f"its worker stopped {attempt} times")
        return False
    taken = changed(
        update(model)
        .where(*same, model.worker == worker, *stale)
        .values(attempt=attempt + 1, worker=None, heartbeat_at=now, **kind.restart)
    )
    db.session.commit()
    if taken != 1:
        return False
    log.warning("%s %s: worker %s stopped; attempt %s takes over", name, run_id, worker, attempt + 1)
    dispatch(name, run_id, attempt + 1)
    return True


def sweep() -> int:
    """Rescue every running job that needs it; how many were handed on."""
    handed = 0
    for name, kind in _kinds.items():
        model = kind.model
        lease = select(model.id, model.status, model.attempt, model.worker, model.heartbeat_at)
        for run in db.session.execute(lease.where(model.status == RUNNING)).all():
            handed += rescue(name, run)
    return handed


def _sweeper(app: Flask, stop: threading.Event) -> None:
    interval = app.config["QUEUE_SWEEP_SECONDS"]
    while not stop.wait(interval):
        with app.app_context():
            try:
                sweep()
            except Exception:  # the database or the broker is away for a moment: try at the next sweep
                db.session.rollback()
                log.exception("the sweep of running jobs failed")
            finally:
                db.session.remove()


def run_worker(app: Flask, threads: int) -> None:
    """Run queued jobs on `threads` threads until SIGINT (finish the jobs in hand) or SIGTERM (stop now).

    The engine work happens in engine processes (service/engine.py), so threads are enough here.
    """
    consumer = for_app(app).huey.create_consumer(
        workers=threads, worker_type="thread", periodic=False, max_delay=1.0, check_worker_health=True
    )
    stop = threading.Event()
    sweeper = threading.Thread(target=_sweeper, args=(app, stop), name="eligo-sweeper", daemon=True)
    sweeper.start()
    try:
        consumer.run()
    finally:
        stop.set()
        sweeper.join(timeout=10)
