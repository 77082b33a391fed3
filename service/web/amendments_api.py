"""The amendment reviewer's API: diff, impact replay, summary of changes, SDTM exports."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from service import amendments, amendments_rebase, impact, schemas, sdtm, versions
from service.auth import api_roles
from service.errors import ApiError
from service.infra.models import ImpactRun, db
from service.schemas import DiffQuery, IeQuery, ImpactRequest, Paging, SummaryQuery
from service.web.openapi import responses, spec

bp = Blueprint("amendments", __name__)


@bp.get("/protocols/<code>/diff")
@api_roles("writer", "reviewer")
@spec.validate(query=DiffQuery, resp=responses(schemas.Diff, 400, 404), tags=["amendments"])
def diff(code: str, query: DiffQuery):
    """What changed between two versions, criterion by criterion: `?from=1&to=2`, as JSON or Markdown."""
    fmt = query.format
    before = versions.find_version(code, query.from_)
    after = versions.find_version(code, query.to)
    result = amendments.protocol_diff(before, after)
    if fmt == "markdown":
        return Response(amendments.markdown(result), mimetype="text/markdown")
    return jsonify(result.to_dict())


@bp.post("/protocols/<code>/versions/<int:number>/rebase")
@api_roles("writer")
@spec.validate(resp=responses(schemas.Rebase, 404, 409, 422), tags=["amendments"])
def rebase(code: str, number: int):
    """Merge what was published since a draft's base into the draft (three-way, item by item); conflicts listed.

    Changed on one side only, an item is taken from that side; changed differently on both, it is a
    conflict: the draft keeps its own and each is listed. Nothing changes if the merge would not compile (422).
    """
    draft = versions.find_version(code, number)
    result = amendments_rebase.rebase(draft)
    db.session.commit()
    return jsonify(amendments_rebase.describe(draft, result))


@bp.post("/protocols/<code>/impact")
@api_roles("reviewer")
@spec.validate(
    json=ImpactRequest,
    resp=responses(schemas.ImpactRun, 400, 404, status=202, HTTP_201=schemas.ImpactRun),
    tags=["amendments"],
)
def start_impact(code: str, json: ImpactRequest):
    """Replay the screenings of version `from` under version `to` (published or draft): 201 when finished
    inline, 202 when started (follow Location for progress)."""
    run = impact.launch(impact.start(code, json.from_, json.to))
    response = jsonify(impact.describe(run))
    response.status_code = 202 if run.status == impact.RUNNING else 201
    response.headers["Location"] = url_for(".get_impact", run_id=run.id)
    return response


def _run(run_id: int) -> ImpactRun:
    run = db.session.get(ImpactRun, run_id)
    if run is None:
        raise ApiError(
            404, f"no impact run {run_id}", [{"field": "id", "value": run_id, "expected": "an existing run"}]
        )
    return run


@bp.post("/impact/<int:run_id>/resume")
@api_roles("reviewer")
@spec.validate(resp=responses(schemas.ImpactRun, 404, 409, HTTP_202=schemas.ImpactRun), tags=["amendments"])
def resume_impact(run_id: int):
    """Carry on a run that failed or was interrupted, from the last chunk it committed."""
    run = impact.launch(impact.resume(_run(run_id)))
    response = jsonify(impact.describe(run))
    response.status_code = 202 if run.status == impact.RUNNING else 200
    return response


@bp.get("/impact/<int:run_id>")
@api_roles("reviewer")
@spec.validate(resp=responses(schemas.ImpactRun, 404), tags=["amendments"])
def get_impact(run_id: int):
    """An impact run's progress and results."""
    return jsonify(impact.describe(_run(run_id)))


@bp.get("/impact/<int:run_id>/changes")
@api_roles("reviewer")
@spec.validate(query=Paging, resp=responses(schemas.ImpactChanges, 400, 404), tags=["amendments"])
def impact_changes(run_id: int, query: Paging):
    """The screenings whose decision changes, with the criteria that caused it."""
    return jsonify(impact.changes_page(_run(run_id), query.page, query.per_page))


@bp.delete("/impact/<int:run_id>")
@api_roles("reviewer")
@spec.validate(resp=responses(schemas.ImpactRun, 404, 409), tags=["amendments"])
def cancel_impact(run_id: int):
    """Cancel a running impact run (results so far are kept)."""
    return jsonify(impact.describe(impact.cancel(_run(run_id))))


@bp.get("/protocols/<code>/versions/<int:number>/summary")
@api_roles("writer", "reviewer")
@spec.validate(query=SummaryQuery, resp=responses(schemas.Summary, 400, 404), tags=["amendments"])
def summary(code: str, number: int, query: SummaryQuery):
    """The summary of changes (criterion, before, after, rationale, subjects affected) against `?from=`
    (default: the version it was amended from)."""
    fmt = query.format
    before, after = amendments.versions_to_compare(code, number, query.from_)
    if fmt == "markdown":
        return Response(amendments.summary_markdown(before, after), mimetype="text/markdown")
    if fmt == "csv":
        filename = f"{code}-v{before.number}-v{after.number}-summary.csv"
        return Response(
            amendments.summary_csv(before, after),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )
    rows, replay = amendments.summary(before, after)
    return jsonify({"from": before.number, "to": after.number, "rows": [vars(r) for r in rows], "replay": replay})


def _csv(body: str, filename: str) -> Response:
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f"attachment; filename={filename}"})


@bp.get("/protocols/<code>/versions/<int:number>/sdtm/ti.csv")
@api_roles()
@spec.validate(resp=responses(None, 404), tags=["amendments"])
def sdtm_ti(code: str, number: int):
    """The version's criteria as a CDISC SDTM TI dataset."""
    version = versions.find_version(code, number)
    return _csv(sdtm.to_csv(sdtm.TI_COLUMNS, sdtm.ti_rows(version)), f"{code}-v{number}-ti.csv")


@bp.get("/sdtm/ie.csv")
@api_roles("reviewer")
@spec.validate(query=IeQuery, resp=responses(None, 400, 404), tags=["amendments"])
def sdtm_ie(query: IeQuery):
    """IE records (criteria not met) from the latest screening of each subject: `?protocol=…&version=…&site=…`."""
    protocol = versions.find_protocol(query.protocol)
    version = versions.find_version(query.protocol, query.version) if query.version else None
    rows = sdtm.ie_rows(protocol, version, query.site)
    return _csv(sdtm.to_csv(sdtm.IE_COLUMNS, rows), f"{query.protocol}-ie.csv")
