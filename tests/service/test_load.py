"""Load without loss: concurrent clients against gunicorn, a worker killed mid-load, every screening stored once;
a 10,000-row batch whose workers (web and job) are killed is stored once or not at all, and its answer says which.

Each client retries a failed or interrupted POST with the same Idempotency-Key, as a well-behaved
client would; the service must turn that into exactly one stored screening per key.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from sqlalchemy import create_engine, text

from service.record import verify

CLIENTS, PER_CLIENT = 6, 30


def _post(token: str, url: str, body: dict, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/api/v1/screenings",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def test_a_worker_killed_mid_load_loses_no_screening_and_stores_none_twice(
    gunicorn, database_url, screening_request, tokens
):
    server = gunicorn(workers=2)
    done, interrupted = [0], [0]
    lock = threading.Lock()

    def client(n: int) -> dict[str, int]:
        stored = {}
        for i in range(PER_CLIENT):
            key = f"load-{n}-{i}"
            body = screening_request(subject_id=f"L-{n}-{i}")
            for _attempt in range(40):
                try:
                    status, answer = _post(tokens["screener"], server.url, body, key)
                except (ConnectionError, urllib.error.URLError, TimeoutError, http.client.HTTPException):
                    status, answer = 0, {}  # refused, cut, or cut mid-answer (IncompleteRead)
                if status == 201:
                    stored[key] = answer["id"]
                    break
                with lock:
                    interrupted[0] += 1
                time.sleep(0.2)
            with lock:
                done[0] += 1
        return stored

    victims = server.workers()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, n) for n in range(CLIENTS)]
        while done[0] < CLIENTS * PER_CLIENT // 3:
            time.sleep(0.05)
        os.kill(victims[0], signal.SIGKILL)
        answered = {key: id_ for future in futures for key, id_ in future.result().items()}

    assert len(answered) == CLIENTS * PER_CLIENT  # every screening was accepted in the end
    assert victims[0] not in server.workers() and len(server.workers()) == 2  # gunicorn replaced the worker
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT idempotency_key, id FROM screenings WHERE idempotency_key LIKE 'load-%'")
        ).all()
        assert len(rows) == len({key for key, _ in rows}) == CLIENTS * PER_CLIENT  # stored once each
        assert dict(rows) == answered  # and each client was told the id that was stored
        assert verify(connection).intact
    engine.dispose()
    print(f"{interrupted[0]} request(s) failed or were cut and retried")


BATCH_ROWS = 10_000


def _batch_csv() -> str:
    header = "subject_id,site,screening_date,cohort,age [years],sex,weight [lb],anc [/µL],hgb [g/dL],hbsag_positive"
    lines = [header]
    for i in range(BATCH_ROWS):
        lines.append(
            f"B-{i:05d},SITE-1,2026-11-02,{('SLE', 'SSc', 'ITP')[i % 3]},{30 + i % 40},female,132,2100,12.5,no"
        )
    return "\n".join(lines) + "\n"


def _call(
    token: str, url: str, method: str = "GET", data: bytes | None = None, key: str | None = None
) -> tuple[int, dict, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "text/csv"
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), {}
    except (ConnectionError, urllib.error.URLError, TimeoutError, http.client.HTTPException):
        return 0, {}, {}


def _stored_rows(database_url: str, key: str) -> int:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(
            text("SELECT count(DISTINCT idempotency_key) FROM screenings WHERE idempotency_key LIKE :k"),
            {"k": f"{key}#row%"},
        ).scalar_one()
    engine.dispose()
    return count


def _job_worker(database_url: str) -> int:
    """The process whose lease the batch job holds."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        worker = connection.execute(text("SELECT worker FROM batch_runs")).scalar_one()
    engine.dispose()
    return int(worker.rpartition(":")[2])


def test_a_10000_row_batch_with_its_workers_killed_is_stored_once_or_not_at_all_and_says_which(
    gunicorn, queue_worker, database_url, tokens
):
    token = tokens["screener"]
    server = gunicorn(workers=2)
    job_workers = [queue_worker(), queue_worker()]
    url, key, body = f"{server.url}/api/v1/screenings/batch?protocol=NCT07193667", "big-load", _batch_csv().encode()
    status, headers, answer = _call(token, url, "POST", body, key)
    assert status == 202, (status, answer)
    location = server.url + headers["Location"]
    deadline = time.monotonic() + 300
    while _call(token, location)[2].get("processed", 0) == 0:  # the job is under way in one of the job workers
        assert time.monotonic() < deadline and all(w.poll() is None for w in job_workers), "the job never started"
        time.sleep(0.2)
    for victim in [*server.workers(), _job_worker(database_url)]:  # the web workers, and the job's worker, die
        os.kill(victim, signal.SIGKILL)
    answers, attempts, deadline = [], 0, time.monotonic() + 900
    while True:
        assert time.monotonic() < deadline, "the batch never finished"
        status, _, answer = _call(token, location)
        if status != 200 or answer["status"] == "running":
            time.sleep(0.5)
            continue
        stored = _stored_rows(database_url, key)
        answers.append(answer["stored"])
        assert stored == (BATCH_ROWS if answer["stored"] else 0)  # all or nothing, as the answer says
        if answer["stored"]:
            break
        assert answer["error"]["reason"] == "interrupted"
        attempts += 1
        assert attempts < 4
        status, headers, answer = _call(token, url, "POST", body, key)  # sent again with the same key
        assert status in (201, 202), status
    assert answers[-1] is True and len(answer["rows"]) == BATCH_ROWS
    again = _call(token, url, "POST", body, key)
    assert again[0] == 201 and again[1].get("Idempotent-Replayed") == "true"
    assert _stored_rows(database_url, key) == BATCH_ROWS
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert verify(connection).intact
    engine.dispose()


def test_preloaded_workers_answer_their_first_requests(gunicorn, tokens):
    """gunicorn --preload: workers forked from the master must not share its database connections."""
    server = gunicorn(workers=2, preload=True)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _call(tokens["screener"], f"{server.url}/api/v1/protocols")[0], range(40)))
    assert answers == [200] * 40
