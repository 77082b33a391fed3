"""The API's protocols, versions, decisions, screenings and batches (a child of service/web/api_v1.py)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

import rules
from service import batch, batch_jobs, schemas, screenings, versions
from service.auth import actor, api_roles, check_site, has_role, own_site, sign
from service.errors import ApiError, error_response
from service.infra.engine import engine
from service.infra.models import BatchRun, Protocol, Screening, db
from service.infra.registry import registry
from service.schemas import (
    AmendRequest,
    BatchHeaders,
    BatchQuery,
    DecideRequest,
    ExportQuery,
    LogFilters,
    LogQuery,
    PublishRequest,
    ScreeningHeaders,
    ScreeningRequest,
)
from service.web.openapi import responses, spec

bp = Blueprint("api", __name__)
BATCH_MAX_BYTES = 16 * 1024 * 1024


# -- protocols and versions ----------------------------------------------------------------


@bp.get("/protocols")
@api_roles()
@spec.validate(resp=responses(schemas.ProtocolList), tags=["protocols"])
def list_protocols():
    """List protocols with their versions."""
    protocols = db.session.execute(db.select(Protocol).order_by(Protocol.code)).scalars()
    out = []
    for protocol in protocols:
        current = protocol.current()
        out.append(
            {
                "protocol": protocol.code,
                "title": protocol.title,
                "current_version": current.number if current else None,
                "content_hash": current.content_hash if current else None,
                "cohorts": [{"code": c.code, "label": c.label} for c in current.cohorts] if current else [],
                "versions": [versions.describe(v) for v in protocol.versions],
            }
        )
    return jsonify(out)


@bp.get("/protocols/<code>")
@api_roles()
@spec.validate(resp=responses(schemas.ProtocolDetail, 404), tags=["protocols"])
def get_protocol(code: str):
    """One protocol and its versions."""
    protocol = versions.find_protocol(code)
    current = protocol.current()
    return jsonify(
        {
            "protocol": protocol.code,
            "title": protocol.title,
            "current_version": current.number if current else None,
            "versions": [versions.describe(v) for v in protocol.versions],
        }
    )


@bp.get("/protocols/<code>/versions/<int:number>")
@api_roles()
@spec.validate(resp=responses(schemas.VersionDetail, 404), tags=["protocols"])
def get_version(code: str, number: int):
    """A version with its data dictionary and criteria."""
    return jsonify(versions.describe(versions.find_version(code, number), full=True))


@bp.get("/protocols/<code>/versions/<int:number>/export")
@api_roles()
@spec.validate(query=ExportQuery, resp=responses(None, 400, 404), tags=["protocols"])
def export_version(code: str, number: int, query: ExportQuery):
    """The version as a protocol file (YAML or JSON)."""
    fmt = query.format
    version = versions.find_version(code, number)
    body = rules.dump_protocol(version.to_definition(), fmt)
    mimetype = "application/json" if fmt == "json" else "application/yaml"
    filename = f"{code}-v{number}.{fmt}"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={filename}"})


@bp.post("/protocols/import")
@api_roles("writer")
@spec.validate(resp=responses(schemas.Version, 400, 409, 413, 422, status=201), tags=["protocols"])
def import_protocol():
    """Import a protocol file (YAML or JSON body) as a new draft version."""
    text = request.get_data(as_text=True)
    if not text.strip():
        raise ApiError(400, "the body must be a protocol file (YAML or JSON)")
    version = versions.import_definition(rules.loads_protocol(text), created_by=actor())
    db.session.commit()
    return _created(versions.describe(version), ".get_version", code=version.protocol.code, number=version.number)


@bp.post("/protocols/<code>/versions")
@api_roles("writer")
@spec.validate(json=AmendRequest, resp=responses(schemas.Version, 400, 404, 409, status=201), tags=["protocols"])
def amend(code: str, json: AmendRequest):
    """Start an amendment: a draft copied from a published version (`{"from": n}`, default current)."""
    source = json.from_
    try:
        draft = versions.amend(code, source)
        db.session.commit()
    except IntegrityError:  # another amendment took the same version number first
        db.session.rollback()
        raise ApiError(
            409,
            "another amendment of this protocol was started at the same moment; look at its versions and try again",
            [{"field": "from", "value": source, "expected": "one amendment at a time"}],
        ) from None
    return _created(versions.describe(draft), ".get_version", code=code, number=draft.number)


@bp.post("/protocols/<code>/versions/<int:number>/publish")
@api_roles("reviewer")
@spec.validate(json=PublishRequest, resp=responses(schemas.Version, 400, 404, 409), tags=["protocols"])
def publish(code: str, number: int, json: PublishRequest):
    """Publish a draft after running its test cases, signed with the reviewer's password and a reason.

    403: the signature was refused; 409: the draft's base is no longer the current version (rebase it);
    422: each failing test case, with what was expected and what came out.
    """
    version = versions.find_version(code, number)
    versions.check_draft(version)
    signature = sign(current_user, json.password, json.reason)
    version = versions.publish(version, signature)
    db.session.commit()
    return jsonify(versions.describe(version))


@bp.post("/decide")
@api_roles()
@spec.validate(json=DecideRequest, resp=responses(schemas.DecisionResult, 400, 404, 413, 503), tags=["screenings"])
def decide(json: DecideRequest):
    """Decide a subject without storing it (drafts allowed, for trying a version)."""
    number, subject = json.version, json.subject
    version = versions.find_version(json.protocol, number)
    if version.status != "published" and not has_role(current_user, "writer", "reviewer"):
        raise ApiError(
            403,
            f"version {version.number} is {version.status}; screeners decide under published versions",
            [{"field": "version", "value": number, "expected": "a published version"}],
        )
    return jsonify(rules.decide(registry().compiled(version), subject, engine(version)).to_dict())


# -- screenings -----------------------------------------------------------------------------


@bp.post("/screenings")
@api_roles("screener")
@spec.validate(
    json=ScreeningRequest,
    headers=ScreeningHeaders,
    resp=responses(schemas.Screening, 400, 404, 413, 503, status=201),
    tags=["screenings"],
)
def create_screening(json: ScreeningRequest, headers: ScreeningHeaders):
    """Screen a subject and keep the screening.

    An `Idempotency-Key` header makes retrying safe: the same key answers the screening stored the first
    time. 503: the engine failed on this subject or the database is unavailable; nothing was stored.
    """
    key = headers.idempotency_key
    screening, stored = screenings.screen(json, actor(), key, site=own_site())
    response = _created(screenings.describe(screening), ".get_screening", screening_id=screening.id)
    if not stored:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/screenings")
@api_roles("screener", "reviewer")
@spec.validate(query=LogQuery, resp=responses(schemas.ScreeningPage, 400), tags=["screenings"])
def list_screenings(query: LogQuery):
    """The screening log, newest first."""
    return jsonify(screenings.page(_log(query), query.page, query.per_page))


@bp.get("/screenings.csv")
@api_roles("screener", "reviewer")
@spec.validate(query=LogFilters, resp=responses(None, 400), tags=["screenings"])
def export_screenings(query: LogFilters):
    """The screening log as CSV (same filters)."""
    log = _log(query)
    return Response(
        stream_with_context(screenings.csv_rows(log)),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=screening-log.csv"},
    )


@bp.get("/screenings/<int:screening_id>")
@api_roles("screener", "reviewer")
@spec.validate(resp=responses(schemas.Screening, 404), tags=["screenings"])
def get_screening(screening_id: int):
    """One screening with its inputs and full explanation."""
    return jsonify(screenings.describe(_screening(screening_id)))


@bp.post("/screenings/<int:screening_id>/replay")
@api_roles("reviewer")
@spec.validate(resp=responses(schemas.Replay, 404, 503), tags=["screenings"])
def replay(screening_id: int):
    """Decide a stored screening again under its own version: whether it gave the same record."""
    same, again = screenings.replay(_screening(screening_id))
    return jsonify({"screening_id": screening_id, "same": same, "result": again})


@bp.post("/screenings/batch")
@api_roles("screener")
@spec.validate(
    query=BatchQuery,
    headers=BatchHeaders,
    resp=responses(
        schemas.BatchAnswer, 400, 404, 413, 503, status=201, HTTP_202=schemas.BatchRun, HTTP_200=schemas.BatchRun
    ),
    tags=["screenings"],
)
def batch_screen(query: BatchQuery, headers: BatchHeaders):
    """Screen a CSV body (`?protocol=…&version=…`); all rows are stored, or none.

    Up to BATCH_INLINE_ROWS rows (default 1,000) are answered at once (201, every row). A bigger
    batch becomes a background job: 202 with its progress at `Location`, which answers every row
    once stored. With an `Idempotency-Key`, a batch sent again (its answer lost, or the client
    killed) answers what the first one did instead of storing the rows twice.
    """
    request.max_content_length = BATCH_MAX_BYTES
    key = headers.idempotency_key
    job = batch_jobs.find(actor(), key) if key else None
    if key and job is None and (earlier := batch.stored_before(key, actor())):
        return _batch_replayed(earlier)
    upload = request.files.get("file")
    raw = upload.read() if upload else request.get_data()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the CSV must be UTF-8 text") from None
    rows = batch.read(text, query.protocol, query.version)
    if job is not None or len(rows) > current_app.config["BATCH_INLINE_ROWS"]:
        return _batch_job(rows, key)
    results = batch.decide_rows(rows, site=own_site())
    try:
        stored = batch.store(results, created_by=actor(), key=key)
    except IntegrityError:  # the same batch, racing: it stored first
        db.session.rollback()
        if not key or not (earlier := batch.stored_before(key, actor())):
            raise
        return _batch_replayed(earlier)
    summaries = [
        batch.answer(r.row, screening_id, r.request.subject_id, r.decision)
        for r, screening_id in zip(results, stored, strict=True)
    ]
    return _batch_answer(summaries, replayed=False)


def _batch_job(rows: list[dict[str, Any]], key: str | None):
    """A big batch: one job per (user, key); sent again, the job answers, or restarts if it was interrupted."""
    batch.check_sites(rows, own_site())
    digest = batch_jobs.request_hash(rows)
    key = key or f"batch-{uuid.uuid4().hex}"
    run = batch_jobs.find(actor(), key)
    replayed = run is not None
    if run is not None:
        if run.request_hash != digest:
            raise ApiError(
                422,
                "this Idempotency-Key was used for a different batch",
                [
                    {
                        "field": "Idempotency-Key",
                        "value": key[:80],
                        "expected": f"a new key, or the same batch as {run.id}",
                    }
                ],
            )
        run = batch_jobs.check_alive(run)
        if run.status == batch_jobs.FAILED and (run.error or {}).get("reason") == batch_jobs.INTERRUPTED:
            run = batch_jobs.launch(batch_jobs.restart(run))
    else:
        try:
            run = batch_jobs.launch(batch_jobs.submit(rows, actor(), key, digest))
        except IntegrityError:  # the same batch, racing: the other request made the job
            db.session.rollback()
            run = batch_jobs.find(actor(), key)
            if run is None:
                raise
    return _job_answer(run, replayed)


def _job_answer(run, replayed: bool = False):
    body = batch_jobs.describe(run)
    if run.status == batch_jobs.FAILED and run.error and run.error.get("reason") != batch_jobs.INTERRUPTED:
        return error_response(run.error["status"], run.error["message"], run.error.get("errors"))
    response = jsonify(body)
    response.status_code = {batch_jobs.DONE: 201, batch_jobs.RUNNING: 202}.get(run.status, 503)
    response.headers["Location"] = url_for(".get_batch", batch_id=run.id)
    if run.status == batch_jobs.RUNNING:
        response.headers["Retry-After"] = "1"
    if replayed and run.status == batch_jobs.DONE:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/batches/<int:batch_id>")
@api_roles("screener")
@spec.validate(resp=responses(schemas.BatchRun, 404), tags=["screenings"])
def get_batch(batch_id: int):
    """A background batch's progress; once stored, every row's answer (`stored` says whether it was)."""
    run = db.session.get(BatchRun, batch_id)
    if run is None or (run.created_by != actor() and not has_role(current_user, "admin")):
        raise ApiError(404, f"no batch {batch_id}", [{"field": "id", "value": batch_id, "expected": "one of yours"}])
    run = batch_jobs.check_alive(run)
    response = jsonify(batch_jobs.describe(run))
    if run.status == batch_jobs.RUNNING:
        response.headers["Retry-After"] = "1"
    return response


def _batch_replayed(earlier: list[tuple[int, Screening]]):
    """The answer a keyed batch got the first time, from the rows it stored then."""
    return _batch_answer([batch.summary(row, s, s.result) for row, s in earlier], replayed=True)


def _batch_answer(rows: list[dict[str, Any]], replayed: bool):
    response = jsonify({"screened": len(rows), "rows": rows})
    response.status_code = 201
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _log(query: LogFilters) -> screenings.LogFilter:
    """The log's filter from its query; a screener's log is their own site's, whatever they ask for."""
    log = screenings.log_filter(query)
    mine = own_site()
    if mine is None:
        return log
    if log.site and log.site != mine:
        check_site(log.site)
    return dataclasses.replace(log, site=mine)


def _screening(screening_id: int) -> Screening:
    screening = db.session.get(Screening, screening_id)
    mine = own_site()
    if screening is None or (mine is not None and screening.site != mine):
        raise ApiError(
            404,
            f"no screening {screening_id}",
            [{"field": "id", "value": screening_id, "expected": "an existing screening"}],
        )
    return screening


def _created(body: dict[str, Any], endpoint: str, **values: Any):
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = url_for(endpoint, **values)
    return response
