"""The ceiling for bench/http_load.py: a bare Flask app answering a JSON body of a given size."""

from __future__ import annotations

import os

from flask import Flask, Response

app = Flask(__name__)
BODY = b'{"padding": "' + b"x" * max(0, int(os.environ.get("BARE_BYTES", "30000")) - 16) + b'"}'


@app.post("/api/v1/screenings")
def screenings() -> Response:
    return Response(BODY, status=201, mimetype="application/json")
