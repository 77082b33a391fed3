"""The amendment reviewer's API: diff, impact replay, summary of changes, SDTM exports."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from service import amendments, amendments_rebase, impact, sdtm, versions
from service.auth import api_roles
from service.errors import ApiError
from service.models import ImpactRun, db

bp = Blueprint("amendments", __name__, url_prefix="/api/v1")


def _version_arg(name: str, required: bool) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(
                400, f"`{name}` is required", [{"field": name, "value": None, "expected": "a version number"}]
            )
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(
            400, f"`{name}` must be a version number", [{"field": name, "value": raw, "expected": "1, 2, …"}]
        )
    return int(raw)


def _format(*allowed: str) -> str:
    fmt = request.args.get("format", allowed[0])
    if fmt not in allowed:
        raise ApiError(400, "unknown format", [{"field": "format", "value": fmt, "expected": " or ".join(allowed)}])
    return fmt


def _page() -> tuple[int, int]:
    values = []
    for name, default, high in (("page", 1, 10**9), ("per_page", 100, 1000)):
        raw = request.args.get(name) or str(default)
        if not raw.isdigit() or not 1 <= int(raw) <= high:
            raise ApiError(
                400, f"`{name}` is out of range", [{"field": name, "value": raw, "expected": f"1 to {high}"}]
            )
        values.append(int(raw))
    return values[0], values[1]


@bp.get("/protocols/<code>/diff")
@api_roles("writer", "reviewer")
def diff(code: str):
    """What changed between two versions: `?from=1&to=2`, as JSON or Markdown."""
    fmt = _format("json", "markdown")
    before = versions.find_version(code, _version_arg("from", True))
    after = versions.find_version(code, _version_arg("to", True))
    result = amendments.protocol_diff(before, after)
    if fmt == "markdown":
        return Response(amendments.markdown(result), mimetype="text/markdown")
    return jsonify(result.to_dict())


@bp.post("/protocols/<code>/versions/<int:number>/rebase")
@api_roles("writer")
def rebase(code: str, number: int):
    """Merge what was published since a draft's base into the draft (three-way, item by item); conflicts listed."""
    draft = versions.find_version(code, number)
    try:
        result = amendments_rebase.rebase(draft)
    except amendments_rebase.RebaseRefused as refused:
        raise ApiError(
            422,
            refused.message,
            [{"field": "based_on", "value": draft.based_on.number, "expected": p} for p in refused.problems],
        ) from None
    db.session.commit()
    return jsonify(amendments_rebase.describe(draft, result))


@bp.post("/protocols/<code>/impact")
@api_roles("reviewer")
def start_impact(code: str):
    """Replay the screenings of version `from` under version `to` (published or draft)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, 'the body must be a JSON object: {"from": 1, "to": 2}')
    problems = []
    for field in ("from", "to"):
        value = data.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append({"field": field, "value": value, "expected": "a version number"})
    unknown = sorted(set(data) - {"from", "to"})
    problems += [{"field": f, "value": data[f], "expected": "from, to"} for f in unknown]
    if problems:
        raise ApiError(422, "the impact request cannot be used", problems)
    run = impact.launch(impact.start(code, data["from"], data["to"]))
    response = jsonify(impact.describe(run))
    response.status_code = 202 if run.status == impact.RUNNING else 201
    response.headers["Location"] = url_for("amendments.get_impact", run_id=run.id)
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
def resume_impact(run_id: int):
    """Carry on a run that failed or was interrupted, from the last chunk it committed."""
    try:
        run = impact.launch(impact.resume(_run(run_id)))
    except impact.ImpactError as error:
        raise ApiError(409, str(error)) from None
    response = jsonify(impact.describe(run))
    response.status_code = 202 if run.status == impact.RUNNING else 200
    return response


@bp.get("/impact/<int:run_id>")
@api_roles("reviewer")
def get_impact(run_id: int):
    return jsonify(impact.describe(_run(run_id)))


@bp.get("/impact/<int:run_id>/changes")
@api_roles("reviewer")
def impact_changes(run_id: int):
    page, per_page = _page()
    return jsonify(impact.changes_page(_run(run_id), page, per_page))


@bp.delete("/impact/<int:run_id>")
@api_roles("reviewer")
def cancel_impact(run_id: int):
    return jsonify(impact.describe(impact.cancel(_run(run_id))))


@bp.get("/protocols/<code>/versions/<int:number>/summary")
@api_roles("writer", "reviewer")
def summary(code: str, number: int):
    """The summary of changes against `?from=` (default: the version it was amended from)."""
    fmt = _format("json", "markdown", "csv")
    before, after = amendments.versions_to_compare(code, number, _version_arg("from", False))
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
def sdtm_ti(code: str, number: int):
    version = versions.find_version(code, number)
    return _csv(sdtm.to_csv(sdtm.TI_COLUMNS, sdtm.ti_rows(version)), f"{code}-v{number}-ti.csv")


@bp.get("/sdtm/ie.csv")
@api_roles("reviewer")
def sdtm_ie():
    """IE records (criteria not met) from the latest screening of each subject: `?protocol=…&version=…&site=…`."""
    code = request.args.get("protocol")
    if not code:
        raise ApiError(
            400, "`protocol` is required", [{"field": "protocol", "value": None, "expected": "a protocol id"}]
        )
    protocol = versions.find_protocol(code)
    number = _version_arg("version", False)
    version = versions.find_version(code, number) if number else None
    rows = sdtm.ie_rows(protocol, version, request.args.get("site") or None)
    return _csv(sdtm.to_csv(sdtm.IE_COLUMNS, rows), f"{code}-ie.csv")
