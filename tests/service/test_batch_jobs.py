"""Big batches: decided in chunks through the engine pool, run as a queue job, stored whole or not at all."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import time

from sqlalchemy import update

from service.infra.models import BatchRun, Screening, db
from service.record import verify
from tests.service.test_batch import GOOD

URL = "/api/v1/screenings/batch?protocol=NCT07193667"


def _count(app) -> int:
    with app.app_context():
        return db.session.query(Screening).count()


def _poll(client, location: str) -> dict:
    for _ in range(300):
        body = client.get(location).get_json()
        if body["status"] != "running":
            return body
        time.sleep(0.1)
    raise AssertionError("the batch never finished")


def test_a_big_batch_runs_on_the_queue_with_progress_and_answers_every_row(make_app, drain, client_for):
    app = make_app(BATCH_INLINE_ROWS=2)
    client = client_for(app, "admin")
    accepted = client.post(URL, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "big-1"})
    assert accepted.status_code == 202 and accepted.headers["Retry-After"] == "1"
    assert accepted.headers["Location"].startswith("/api/v1/batches/")
    waiting = client.get(accepted.headers["Location"]).get_json()
    assert (waiting["status"], waiting["stored"], waiting["processed"]) == ("running", False, 0)
    assert drain(app) == 1  # a worker takes the job from the queue
    done = _poll(client, accepted.headers["Location"])
    assert (done["status"], done["stored"], done["total"], done["processed"]) == ("done", True, 3, 3)
    assert [(r["row"], r["decision"]) for r in done["rows"]] == [
        (2, "not_eligible"),
        (3, "not_eligible"),
        (4, "incomplete"),
    ]
    again = client.post(URL, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "big-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["rows"] == done["rows"]
    assert _count(app) == 3


def test_a_big_batch_with_a_bad_row_stores_nothing_and_says_why(make_app, client_for):
    app = make_app(BATCH_INLINE_ROWS=2, BATCH_INLINE=True)
    bad = GOOD.replace(",132,", ",lots,")
    client = client_for(app, "admin")
    refused = client.post(URL, data=bad, content_type="text/csv", headers={"Idempotency-Key": "big-bad"})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["errors"][0]["row"] == 2
    assert _count(app) == 0
    other = client.post(URL, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "big-bad"})
    assert other.status_code == 422 and "different batch" in other.get_json()["error"]["message"]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _claimed_by_a_dead_worker(app, key: str, attempt: int = 1) -> int:
    from service import batch, batch_jobs

    with app.app_context():  # a job whose worker died before storing: running, claimed, never to finish
        rows = batch.read(GOOD, "NCT07193667", None)
        run = batch_jobs.submit(rows, "admin", key, batch_jobs.request_hash(rows))
        lease = {"worker": f"{socket.gethostname()}:{_dead_pid()}", "attempt": attempt, "processed": 2}
        db.session.execute(update(BatchRun).values(**lease).where(BatchRun.id == run.id))
        db.session.commit()
        return run.id


def test_a_batch_whose_worker_died_is_taken_over_and_stored_by_itself(make_app, client_for):
    app = make_app(BATCH_INLINE_ROWS=2, BATCH_INLINE=True)
    client = client_for(app, "admin")
    run_id = _claimed_by_a_dead_worker(app, "big-cut")
    status = client.get(f"/api/v1/batches/{run_id}").get_json()  # the look at it hands it to a new attempt
    assert (status["status"], status["stored"], status["processed"]) == ("done", True, 3)
    assert _count(app) == 3
    with app.app_context():
        assert db.session.get(BatchRun, run_id).attempt == 2


def test_a_batch_whose_lease_ran_out_is_taken_over(make_app, client_for):
    app = make_app(BATCH_INLINE_ROWS=2, BATCH_INLINE=True, QUEUE_LEASE_SECONDS=5)
    client = client_for(app, "admin")
    run_id = _claimed_by_a_dead_worker(app, "big-far")
    with app.app_context():  # claimed on another host: only the lease tells
        far = {"worker": "elsewhere:1", "heartbeat_at": dt.datetime(2026, 1, 1)}
        db.session.execute(update(BatchRun).values(**far).where(BatchRun.id == run_id))
        db.session.commit()
    assert client.get(f"/api/v1/batches/{run_id}").get_json()["status"] == "done"
    assert _count(app) == 3


def test_a_batch_whose_workers_keep_dying_fails_and_runs_again_with_its_key(make_app, client_for):
    app = make_app(BATCH_INLINE_ROWS=2, BATCH_INLINE=True, QUEUE_MAX_ATTEMPTS=3)
    client = client_for(app, "admin")
    run_id = _claimed_by_a_dead_worker(app, "big-doomed", attempt=3)
    status = client.get(f"/api/v1/batches/{run_id}").get_json()
    assert (status["status"], status["stored"], status["error"]["reason"]) == ("failed", False, "interrupted")
    assert "stopped 3 times" in status["error"]["message"]
    assert _count(app) == 0
    again = client.post(URL, data=GOOD, content_type="text/csv", headers={"Idempotency-Key": "big-doomed"})
    assert again.status_code == 201 and again.get_json()["stored"] is True
    assert _count(app) == 3


def test_a_screeners_big_batch_is_refused_for_another_sites_rows(make_app, client_for):
    app = make_app(BATCH_INLINE_ROWS=2)
    client = client_for(app, "screener")
    refused = client.post(URL, data=GOOD, content_type="text/csv")
    assert refused.status_code == 422
    assert [(e["row"], e["field"]) for e in refused.get_json()["error"]["errors"]] == [(4, "site")]
    assert _count(app) == 0


def test_an_older_attempt_can_never_store_over_a_newer_one(make_app):
    app = make_app(BATCH_INLINE=True)
    from service import batch, batch_jobs

    with app.app_context():
        rows = batch.read(GOOD, "NCT07193667", None)
        run = batch_jobs.submit(rows, "screener", "big-race", batch_jobs.request_hash(rows))
        batch_jobs.restart(run)  # attempt 2 takes over
        batch_jobs.execute(run.id, 1)  # attempt 1 wakes up: it must not store
        assert db.session.query(Screening).count() == 0
        batch_jobs.execute(run.id, 2)
        assert db.session.query(Screening).count() == 3


def test_batch_rows_are_stored_as_single_screenings_are_and_chained(app, client):
    response = client.post(URL, data=GOOD, content_type="text/csv")
    first = response.get_json()["rows"][0]
    replayed = client.post(f"/api/v1/screenings/{first['screening_id']}/replay").get_json()
    assert replayed["same"] is True
    again = client.post(URL, data=GOOD.replace("S-1,", "S-1b,"), content_type="text/csv")
    assert again.status_code == 201
    with app.app_context(), db.engine.connect() as connection:
        assert verify(connection).intact


def test_previous_screenings_are_linked_within_a_site_only(app, client):
    two_sites = GOOD.replace("S-3,SITE-2", "S-1,SITE-2")
    rows = client.post(URL, data=two_sites, content_type="text/csv").get_json()["rows"]
    again = client.post(URL, data=two_sites, content_type="text/csv").get_json()["rows"]
    with app.app_context():
        previous = {r["row"]: db.session.get(Screening, r["screening_id"]).previous_id for r in again}
    assert previous == {2: rows[0]["screening_id"], 3: rows[1]["screening_id"], 4: rows[2]["screening_id"]}
