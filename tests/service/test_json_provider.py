"""JSON answers through orjson read exactly as Flask's own provider wrote them."""

from __future__ import annotations

import datetime as dt
import json

from flask import jsonify
from flask.json.provider import DefaultJSONProvider

from service.web.json_provider import FastJSONProvider


def test_an_answer_is_the_bytes_flasks_provider_gives(app):
    data = {"b": [1, 2.5, None], "a": {"z": True, "y": "text"}, "when": dt.date(2026, 11, 2)}
    with app.test_request_context():
        assert isinstance(app.json, FastJSONProvider)
        fast = jsonify(data)
        plain = DefaultJSONProvider(app).response(data)
    assert fast.get_data() == plain.get_data()  # sorted keys, compact, HTTP dates, a final newline
    assert fast.mimetype == plain.mimetype == "application/json"


def test_what_orjson_refuses_is_answered_by_the_standard_library(app):
    data = {"big": 2**70, "text": "µmol/L"}
    with app.test_request_context():
        answer = jsonify(data)
    assert json.loads(answer.get_data()) == data
