"""The storing floor for bench/http_load.py: parse the screening request, store a row, answer.

What any service must do for a screening, and nothing of Eligo: read the same JSON request, insert
one JSON row of the size of Eligo's answer into SQLite (write-ahead log, synchronous FULL: the row
is on disk before the answer, as Eligo's is) and answer that row. Eligo's rate as a share of this
one is what issue 15 targets (at least 0.5x).

    STORING_DATABASE=/tmp/floor.db STORING_BYTES=42000 gunicorn bench.storing:app
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading

from flask import Flask, Response, request

app = Flask(__name__)
ROW_BYTES = int(os.environ.get("STORING_BYTES", "30000"))
_local = threading.local()


def create(path: str) -> None:
    """The floor's table, made once before the server starts (its workers never race to make it)."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS screenings (id INTEGER PRIMARY KEY, subject_id TEXT, body TEXT)")


def _connection() -> sqlite3.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(os.environ["STORING_DATABASE"], timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        _local.connection = connection
    return connection


@app.post("/api/v1/screenings")
def screenings() -> Response:
    data = request.get_json()
    row = {"request": data, "padding": ""}
    row["padding"] = "x" * max(0, ROW_BYTES - len(json.dumps(row)))
    body = json.dumps(row)
    connection = _connection()
    with connection:  # one transaction, committed (fsync'd) before the answer
        connection.execute("INSERT INTO screenings (subject_id, body) VALUES (?, ?)", (data["subject_id"], body))
    return Response(body, status=201, mimetype="application/json")
