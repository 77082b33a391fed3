"""Impact replay: decide the screenings of one version again under another, and report what changes.

Screenings are read in id order a chunk at a time (keyset pagination), so
memory stays flat however long the log, and progress is committed after every
chunk so another process can show it, in the same transaction as the cursor. A
run is a job on the queue (service/queue.py): a job worker that takes over a killed
worker's run carries on from the last chunk committed, and a chunk whose run was
cancelled meanwhile is not stored. Changed screenings go to their own table, listed
page by page.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import current_app, url_for
from sqlalchemy import Row, func, select, update
from sqlalchemy.orm.exc import StaleDataError

import rules
from rules.errors import SubjectInputErrors
from service.errors import Conflict
from service.infra import queue
from service.infra.db import changed
from service.infra.engine import replay_engine
from service.infra.models import ImpactChange, ImpactRun, ProtocolVersion, Screening, db, iso, utcnow
from service.infra.registry import registry
from service.versions import find_version
from service.vocabulary import RunStatus

RUNNING, DONE, CANCELLED, FAILED = RunStatus.RUNNING, RunStatus.DONE, RunStatus.CANCELLED, RunStatus.FAILED


class ImpactError(Conflict):
    """An impact run asked to do what its state does not allow (resuming a finished run...): 409 in the API."""


def start(code: str, from_number: int, to_number: int) -> ImpactRun:
    before, after = find_version(code, from_number), find_version(code, to_number)
    total = db.session.execute(
        select(func.count()).select_from(Screening).where(Screening.version_id == before.id)
    ).scalar_one()
    run = ImpactRun(
        protocol_id=before.protocol_id,
        from_version=before,
        to_version=after,
        to_content_hash=after.to_definition().content_hash,
        total=total,
        transitions={},
        criteria={},
    )
    db.session.add(run)
    db.session.commit()
    return run


def causes(before: dict[str, str], after: dict[str, str], order: list[str]) -> list[str]:
    """The criteria whose outcome differs in a way that can move a decision."""
    moving = {"fail", "unknown", None}
    found = [
        code
        for code in order
        if before.get(code) != after.get(code) and (before.get(code) in moving or after.get(code) in moving)
    ]
    return found


def execute(run_id: int, attempt: int | None = None, progress: Callable[[int], None] | None = None) -> ImpactRun | None:
    """Replay the run's screenings from its cursor on, committing each chunk with the cursor.

    The attempt (default: the run's current one) is claimed first, and every chunk commits only if
    the run is still running, still this attempt's, and its cursor where this chunk started: a run
    cancelled or taken over by another worker stops here without writing, and no chunk is ever
    counted twice. A process killed half-way loses at most the chunk in flight, which its
    transaction never wrote; the attempt that takes over carries on from the stored cursor.
    """
    run = db.session.get(ImpactRun, run_id)
    if run is None:
        return run
    attempt = run.attempt if attempt is None else attempt
    if not queue.claim(ImpactRun, run_id, attempt):
        db.session.refresh(run)
        return run
    db.session.refresh(run)
    try:
        _replay(run, attempt, progress)
    except Exception as error:
        db.session.rollback()
        _finish(run_id, attempt, FAILED, str(error))
        raise
    db.session.refresh(run)
    return run


def _replay(run: ImpactRun, attempt: int, progress: Callable[[int], None] | None) -> None:
    run_id = run.id
    compiled = registry().compiled(run.to_version)
    if compiled.content_hash != run.to_content_hash:
        _finish(run_id, attempt, FAILED, "the draft changed since this run started")
        return
    order = [c.code for c in compiled.criteria]
    state = _Progress(run.cursor, run.processed, run.changed, dict(run.transitions), dict(run.criteria))
    size = current_app.config["IMPACT_CHUNK"]
    read = partial(_read, run.from_version_id, size)
    engine = replay_engine(run.to_version)
    # One chunk ahead: while the engine processes decide a chunk, this thread stores the previous
    # chunk's changes and reads the next one.
    ahead = ThreadPoolExecutor(1, thread_name_prefix="eligo-replay")

    def decide(rows: list[Row]) -> Future | None:
        if not rows:
            return None
        subjects = [{**r.inputs, "cohort": r.cohort, "screening_date": r.screening_date.isoformat()} for r in rows]
        return ahead.submit(rules.outcomes_many, compiled, subjects, engine)

    try:
        chunk = read(state.cursor)
        pending = decide(chunk)
        while pending is not None:
            following = read(chunk[-1].id)
            results = pending.result()
            pending = decide(following)
            for screening, outcome in zip(chunk, results, strict=True):
                _record_change(run_id, screening, outcome, order, state)
            if not _commit_chunk(run_id, attempt, state, chunk[-1].id, len(chunk)):
                db.session.rollback()  # cancelled, or another attempt took the run over
                return
            if progress:
                progress(len(chunk))
            chunk = following
        _finish(run_id, attempt, DONE)
    finally:
        ahead.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Progress:
    """The run's counts as this attempt has them: what the next chunk's commit writes."""

    cursor: int
    processed: int
    changed: int
    transitions: dict[str, int]
    criteria: dict[str, int]


def _commit_chunk(run_id: int, attempt: int, state: _Progress, last_id: int, count: int) -> bool:
    """Store a chunk's counts and cursor, and renew the lease, if the run is still this attempt's."""
    result = changed(
        update(ImpactRun)
        .where(
            ImpactRun.id == run_id,
            ImpactRun.attempt == attempt,
            ImpactRun.status == RUNNING,
            ImpactRun.cursor == state.cursor,
        )
        .values(
            cursor=last_id,
            processed=state.processed + count,
            changed=state.changed,
            transitions=dict(state.transitions),
            criteria=dict(state.criteria),
            heartbeat_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if result != 1:
        return False
    db.session.commit()
    state.cursor, state.processed = last_id, state.processed + count
    return True


def _finish(run_id: int, attempt: int, status: str, error: str | None = None) -> None:
    """End the run, if it is still running this attempt."""
    db.session.execute(
        update(ImpactRun)
        .where(ImpactRun.id == run_id, ImpactRun.attempt == attempt, ImpactRun.status == RUNNING)
        .values(status=status, error=error, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _read(from_version_id: int, size: int, after_id: int) -> list[Row]:
    """The next chunk of the run's screenings after a screening id.

    Plain rows, not ORM objects: nothing to track, expire or expunge per screening; the stored
    explanation, tens of KB of JSON, is read only for the few that change.
    """
    return list(
        db.session.execute(
            select(Screening.id, Screening.inputs, Screening.cohort, Screening.screening_date, Screening.decision)
            .where(Screening.version_id == from_version_id, Screening.id > after_id)
            .order_by(Screening.id)
            .limit(size)
        ).all()
    )


def _record_change(run_id: int, screening: Row, outcome: Any, order: list[str], state: _Progress) -> None:
    before = screening.decision
    if isinstance(outcome, SubjectInputErrors):
        after, found = "error", [e.field for e in outcome.errors]
    else:
        after, new = outcome
        if after == before:
            return
        stored = db.session.execute(select(Screening.result).where(Screening.id == screening.id)).scalar_one()
        old = {c["code"]: c["outcome"] for c in stored["criteria"]}
        found = causes(old, new, order)
    key = f"{before}→{after}"
    state.transitions[key] = state.transitions.get(key, 0) + 1
    for code in found:
        state.criteria[code] = state.criteria.get(code, 0) + 1
    state.changed += 1
    db.session.add(ImpactChange(run_id=run_id, screening_id=screening.id, before=before, after=after, causes=found))


def resume(run: ImpactRun) -> ImpactRun:
    """Carry on a failed run (or one still `running`) from its cursor, as a new attempt: an older
    attempt still going can no longer commit."""
    if run.status not in (RUNNING, FAILED):
        raise ImpactError(f"impact run {run.id} is {run.status}; only a failed or interrupted run resumes")
    run.status, run.error, run.finished_at = RUNNING, None, None
    run.attempt, run.worker, run.heartbeat_at = run.attempt + 1, None, utcnow()
    db.session.commit()
    return run


def cancel(run: ImpactRun) -> ImpactRun:
    """Stop a run at its next chunk; retried if a chunk commits (moving the cursor) meanwhile."""
    for _ in range(5):
        db.session.refresh(run)
        if run.status != RUNNING:
            return run
        run.status, run.finished_at = CANCELLED, utcnow()
        try:
            db.session.commit()
            return run
        except StaleDataError:
            db.session.rollback()
    raise ImpactError(f"impact run {run.id} could not be cancelled; try again")


def _give_up(run_id: int, attempt: int, why: str) -> None:
    _finish(run_id, attempt, FAILED, f"{why}; resume it to try again from where it stopped")


queue.register(
    queue.JobKind(
        name="impact",
        model=ImpactRun,
        execute=execute,
        inline_setting="IMPACT_INLINE",
        restart={},
        give_up=_give_up,
    )
)


def launch(run: ImpactRun) -> ImpactRun:
    """Run inline when configured (IMPACT_INLINE: tests, CLI), on the job queue otherwise."""
    queue.dispatch("impact", run.id, run.attempt)
    db.session.refresh(run)
    return run


def describe(run: ImpactRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "protocol": run.protocol.code,
        "from_version": run.from_version.number,
        "to_version": run.to_version.number,
        "to_status": run.to_version.status,
        "to_content_hash": run.to_content_hash,
        "status": run.status,
        "total": run.total,
        "processed": run.processed,
        "changed": run.changed,
        "transitions": run.transitions,
        "criteria": dict(sorted(run.criteria.items(), key=lambda item: -item[1])),
        "error": run.error,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }


def changes_page(run: ImpactRun, page: int, per_page: int) -> dict[str, Any]:
    query = select(ImpactChange, Screening).join(Screening, Screening.id == ImpactChange.screening_id)
    query = query.where(ImpactChange.run_id == run.id).order_by(ImpactChange.id)
    rows = db.session.execute(query.offset((page - 1) * per_page).limit(per_page)).all()
    items = [
        {
            "screening_id": screening.id,
            "subject_id": screening.subject_id,
            "site": screening.site,
            "before": change.before,
            "after": change.after,
            "causes": change.causes,
            "url": url_for("api_v1.api.get_screening", screening_id=screening.id),
        }
        for change, screening in rows
    ]
    return {"items": items, "page": page, "per_page": per_page, "total": run.changed}


def latest_done(before: ProtocolVersion, after: ProtocolVersion) -> ImpactRun | None:
    """The newest finished run between two versions whose second version is still as it was replayed."""
    current = after.to_definition().content_hash
    return db.session.execute(
        select(ImpactRun)
        .where(
            ImpactRun.from_version_id == before.id,
            ImpactRun.to_version_id == after.id,
            ImpactRun.status == DONE,
            ImpactRun.to_content_hash == current,
        )
        .order_by(ImpactRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()
