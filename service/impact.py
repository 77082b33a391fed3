"""Impact replay: decide the screenings of one version again under another, and report what changes.

Screenings are read in id order a chunk at a time (keyset pagination), so
memory stays flat however long the log, and progress is committed after every
chunk so another process can show it. Each chunk first checks whether the run
was cancelled. Changed screenings go to their own table, listed page by page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app, url_for
from sqlalchemy import Row, func, select
from sqlalchemy.orm.exc import StaleDataError

import rules
from rules.errors import EligoError, SubjectInputErrors
from service.engine import replay_engine
from service.models import ImpactChange, ImpactRun, ProtocolVersion, Screening, db, iso, utcnow
from service.registry import registry
from service.versions import find_version
from service.vocabulary import RunStatus

CHUNK = 500
RUNNING, DONE, CANCELLED, FAILED = RunStatus.RUNNING, RunStatus.DONE, RunStatus.CANCELLED, RunStatus.FAILED


class ImpactError(EligoError):
    """An impact run asked to do what its state does not allow."""


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


def execute(run_id: int, progress: Callable[[int], None] | None = None) -> ImpactRun:
    """Replay the run's screenings from its cursor on, committing each chunk with the cursor.

    A process killed half-way loses at most the chunk in flight, which its transaction never
    wrote: the changes, counts and cursor stored always agree, and `resume` carries on from there.
    """
    run = db.session.get(ImpactRun, run_id)
    compiled = registry().compiled(run.to_version)
    if compiled.content_hash != run.to_content_hash:
        run.status, run.error, run.finished_at = FAILED, "the draft changed since this run started", utcnow()
        db.session.commit()
        return run
    order = [c.code for c in compiled.criteria]
    transitions: dict[str, int] = dict(run.transitions)
    counts: dict[str, int] = dict(run.criteria)
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
        chunk = _read(run, run.cursor)
        pending = decide(chunk)
        while pending is not None:
            db.session.refresh(run)
            if run.status != RUNNING:
                return run
            following = _read(run, chunk[-1].id)
            results = pending.result()
            pending = decide(following)
            for screening, outcome in zip(chunk, results, strict=True):
                _record_change(run, screening, outcome, order, transitions, counts)
            run.cursor = chunk[-1].id
            run.processed += len(chunk)
            run.transitions = dict(transitions)
            run.criteria = dict(counts)
            db.session.commit()
            run = db.session.get(ImpactRun, run_id)
            if progress:
                progress(len(chunk))
            chunk = following
        run.status, run.finished_at = DONE, utcnow()
        db.session.commit()
    except StaleDataError:  # another process resumed this run and is ahead: it finishes it
        db.session.rollback()
        return db.session.get(ImpactRun, run_id)
    except Exception as error:
        db.session.rollback()
        run = db.session.get(ImpactRun, run_id)
        run.status, run.error, run.finished_at = FAILED, str(error), utcnow()
        db.session.commit()
        raise
    finally:
        ahead.shutdown(wait=True, cancel_futures=True)
    return run


def _read(run: ImpactRun, after_id: int) -> list[Row]:
    """The next chunk of the run's screenings after a screening id.

    Plain rows, not ORM objects: nothing to track, expire or expunge per screening; the stored
    explanation, tens of KB of JSON, is read only for the few that change.
    """
    return list(
        db.session.execute(
            select(Screening.id, Screening.inputs, Screening.cohort, Screening.screening_date, Screening.decision)
            .where(Screening.version_id == run.from_version_id, Screening.id > after_id)
            .order_by(Screening.id)
            .limit(CHUNK)
        ).all()
    )


def _record_change(run, screening, outcome, order, transitions, counts) -> None:
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
    transitions[key] = transitions.get(key, 0) + 1
    for code in found:
        counts[code] = counts.get(code, 0) + 1
    run.changed += 1
    db.session.add(ImpactChange(run_id=run.id, screening_id=screening.id, before=before, after=after, causes=found))


def resume(run: ImpactRun) -> ImpactRun:
    """Carry on a run that failed or whose process died (still `running` with nobody running it)."""
    if run.status not in (RUNNING, FAILED):
        raise ImpactError(f"impact run {run.id} is {run.status}; only a failed or interrupted run resumes")
    run.status, run.error, run.finished_at = RUNNING, None, None
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


def run_in_background(app: Flask, run_id: int) -> None:
    def work() -> None:
        with app.app_context():
            try:
                execute(run_id)
            except Exception:
                app.logger.exception("impact run %s failed", run_id)
            finally:
                db.session.remove()

    threading.Thread(target=work, name=f"impact-{run_id}", daemon=True).start()


def launch(run: ImpactRun) -> ImpactRun:
    """Run inline when configured (tests, CLI), in a background thread otherwise."""
    if current_app.config["IMPACT_INLINE"]:
        return execute(run.id)
    run_in_background(current_app._get_current_object(), run.id)  # type: ignore[attr-defined]
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
            "url": url_for("api.get_screening", screening_id=screening.id),
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
