"""The JSON API, version 1: try the engine over HTTP."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

import rules
from service.errors import ApiError
from service.registry import registry

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)")
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", [{"field": "body", "expected": "an object"}])
    return data


@bp.get("/protocols")
def protocols():
    return jsonify(
        [
            {
                "protocol": c.definition.protocol,
                "title": c.definition.title,
                "version": c.definition.version,
                "content_hash": c.content_hash,
                "cohorts": [{"code": k.code, "label": k.label} for k in c.definition.cohorts],
            }
            for c in registry().all()
        ]
    )


@bp.post("/decide")
def decide():
    """Decide one subject without storing it: `{"protocol": "...", "subject": {...}}`."""
    data = _json_body()
    unknown = sorted(set(data) - {"protocol", "subject"})
    if unknown:
        raise ApiError(
            400, "unknown fields in the body", [{"field": f, "expected": "protocol, subject"} for f in unknown]
        )
    name = data.get("protocol")
    if not isinstance(name, str):
        raise ApiError(
            422, "`protocol` is required", [{"field": "protocol", "value": name, "expected": "a protocol id"}]
        )
    compiled = registry().get(name)
    if compiled is None:
        known = ", ".join(c.definition.protocol for c in registry().all())
        raise ApiError(
            404, f"no protocol {name!r}", [{"field": "protocol", "value": name, "expected": f"one of {known}"}]
        )
    subject = data.get("subject")
    if not isinstance(subject, dict):
        raise ApiError(
            422, "`subject` must be an object", [{"field": "subject", "expected": "an object of variable: value"}]
        )
    return jsonify(rules.decide(compiled, subject).to_dict())
