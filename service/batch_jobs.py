"""Big CSV batches as background jobs: accepted at once (202), decided in chunks with progress, stored whole.

The job is a `BatchRun` row: the parsed rows, a status, progress counts and a lease (the worker that
claimed the attempt, its heartbeat), run by a worker of the job queue (service/queue.py), as impact
replays are. All rows are stored in one transaction together with the status `done`, or none are: a
worker killed half-way leaves the run `running` with a stale lease, and a sweep (any worker's, or the
next look at the job) starts it again as a new attempt on another worker; an older attempt still
alive can no longer commit (every write is conditional on the attempt number). A job whose workers
keep dying fails as interrupted after QUEUE_MAX_ATTEMPTS; sent again with the same Idempotency-Key,
it starts again.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from rules import jsonfast
from service import batch
from service.errors import DomainError, http_status
from service.infra import queue
from service.infra.db import changed
from service.infra.models import BatchRun, db, iso, utcnow
from service.vocabulary import RunStatus

RUNNING, DONE, FAILED = RunStatus.RUNNING, RunStatus.DONE, RunStatus.FAILED
INTERRUPTED = "interrupted"


def request_hash(rows: list[dict[str, Any]]) -> str:
    """What makes two batches the same request: their rows as parsed, in order."""
    return hashlib.sha256(jsonfast.dumps_bytes(rows)).hexdigest()


def find(created_by: str, key: str) -> BatchRun | None:
    return db.session.execute(
        select(BatchRun).where(BatchRun.created_by == created_by, BatchRun.idempotency_key == key)
    ).scalar_one_or_none()


def submit(rows: list[dict[str, Any]], created_by: str, key: str, digest: str) -> BatchRun:
    run = BatchRun(
        created_by=created_by, idempotency_key=key, request_hash=digest, rows=rows, total=len(rows), processed=0
    )
    db.session.add(run)
    db.session.commit()
    return run


def _claim(run_id: int, attempt: int, **values: Any) -> bool:
    """Update the run only if this attempt still owns it (running, same attempt number)."""
    result = changed(
        update(BatchRun)
        .where(BatchRun.id == run_id, BatchRun.attempt == attempt, BatchRun.status == RUNNING)
        .values(heartbeat_at=utcnow(), **values)
    )
    return result == 1


def execute(run_id: int, attempt: int) -> None:
    """Decide every row a chunk at a time (progress committed per chunk), then store all rows at once."""
    if not queue.claim(BatchRun, run_id, attempt):
        return
    run = db.session.get(BatchRun, run_id)
    assert run is not None  # just claimed
    rows = [dict(r) for r in run.rows or []]
    created_by, key = run.created_by, run.idempotency_key
    processed = [0]

    def progress(count: int) -> None:
        processed[0] += count
        if not _claim(run_id, attempt, processed=processed[0]):
            raise _Superseded
        db.session.commit()

    try:
        results = batch.decide_rows(rows, progress)
        ids = batch.store(results, created_by=created_by, key=key, commit=False)
        # Once stored, the run keeps every row's answer (a few hundred bytes each) in place of its input.
        answers = [
            batch.answer(r.row, screening_id, r.request.subject_id, r.decision)
            for r, screening_id in zip(results, ids, strict=True)
        ]
        if not _claim(run_id, attempt, status=DONE, processed=len(rows), finished_at=utcnow(), rows=answers):
            raise _Superseded
        db.session.commit()
    except _Superseded:
        db.session.rollback()
    except DomainError as refused:
        db.session.rollback()
        _fail(run_id, attempt, {"status": http_status(refused), "message": refused.message, "errors": refused.problems})
    except Exception as error:
        db.session.rollback()
        current_app.logger.exception("batch %s failed", run_id)
        _fail(run_id, attempt, {"status": 500, "message": f"the batch failed ({type(error).__name__}); nothing stored"})


class _Superseded(Exception):
    """Another attempt took the run over: this one stops without writing."""


def _fail(run_id: int, attempt: int, error: dict[str, Any]) -> None:
    _claim(run_id, attempt, status=FAILED, error=error, finished_at=utcnow())
    db.session.commit()


def check_alive(run: BatchRun) -> BatchRun:
    """A running job whose worker stopped is handed to another worker at once (see service/queue.py)."""
    queue.rescue("batch", run)
    return run


def restart(run: BatchRun) -> BatchRun:
    """A new attempt at an interrupted run; an older attempt still alive can no longer write."""
    db.session.execute(
        update(BatchRun)
        .where(BatchRun.id == run.id, BatchRun.attempt == run.attempt)
        .values(
            attempt=run.attempt + 1,
            status=RUNNING,
            processed=0,
            error=None,
            finished_at=None,
            heartbeat_at=utcnow(),
            worker=None,
        )
    )
    db.session.commit()
    db.session.refresh(run)
    return run


def _give_up(run_id: int, attempt: int, why: str) -> None:
    message = f"the workers running this batch stopped ({why}); nothing was stored; send it again with the same key"
    _fail(run_id, attempt, {"status": 503, "message": message, "reason": INTERRUPTED})


queue.register(
    queue.JobKind(
        name="batch",
        model=BatchRun,
        execute=execute,
        inline_setting="BATCH_INLINE",
        restart={"processed": 0},
        give_up=_give_up,
    )
)


def launch(run: BatchRun) -> BatchRun:
    """Inline when configured (tests: BATCH_INLINE), on the job queue otherwise."""
    queue.dispatch("batch", run.id, run.attempt)
    db.session.refresh(run)
    return run


def describe(run: BatchRun) -> dict[str, Any]:
    """The job's state; once done, every row's answer. `stored` says whether the rows are in the log."""
    data: dict[str, Any] = {
        "id": run.id,
        "status": run.status,
        "stored": run.status == DONE,
        "total": run.total,
        "processed": run.processed,
        "error": run.error,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }
    if run.status == DONE:
        data["screened"], data["rows"] = len(run.rows or []), run.rows or []
    return data
