"""Load without loss: concurrent clients against gunicorn, a worker killed mid-load, every screening stored once.

Each client retries a failed or interrupted POST with the same Idempotency-Key, as a well-behaved
client would; the service must turn that into exactly one stored screening per key.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from sqlalchemy import create_engine, text

from service.record import verify
from tests.conftest import TOKENS

CLIENTS, PER_CLIENT = 6, 30


def _post(url: str, body: dict, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/api/v1/screenings",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {TOKENS['screener']}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def test_a_worker_killed_mid_load_loses_no_screening_and_stores_none_twice(gunicorn, database_url, screening_request):
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
                    status, answer = _post(server.url, body, key)
                except (ConnectionError, urllib.error.URLError, TimeoutError):
                    status, answer = 0, {}
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
