"""The service's domain errors, one JSON error shape for the API, and the mapping from our error tree to
HTTP status codes.

Domain code (screenings, batches, signatures) raises `DomainError`s, which say what is wrong in the
domain's terms and name each problem's field, value and what was expected; only `init_app`'s handler
turns them into HTTP (DOMAIN_STATUS). Bad input is the client's to fix (400 for unreadable requests,
422 for readable requests with bad values); an unexpected failure is logged and answered with a
plain 500 body that leaks no stack trace.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, jsonify, make_response, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from rules.errors import (
    EligoError,
    EngineCrashed,
    EngineError,
    EngineTimeout,
    ProtocolError,
    RuleErrors,
    SubjectInputError,
    SubjectInputErrors,
)


class DomainError(EligoError):
    """A request the service refuses: a message, and each problem as {field, value, expected}."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidInput(DomainError):
    """Readable, but the values cannot be used (an unknown cohort, a date in the future, a bad CSV row)."""


class Unreadable(InvalidInput):
    """The request's form itself is wrong: unknown fields, a filter that cannot be read."""


class TooLarge(InvalidInput):
    """More than the service takes in one request (a batch beyond its row limit)."""


class NotFound(DomainError):
    """What the request names does not exist (or is not the actor's to see)."""


class Forbidden(DomainError):
    """The actor may not do this (another site's subject, a signature with the wrong password)."""


class Conflict(DomainError):
    """The request clashes with the state of things (a run already finished, a concurrent change)."""


# Most specific first: the status of the first class an error is an instance of.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    Unreadable: 400,
    TooLarge: 413,
    InvalidInput: 422,
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
}


def http_status(error: DomainError) -> int:
    return next(status for kind, status in DOMAIN_STATUS.items() if isinstance(error, kind))


class ApiError(Exception):
    """A client error raised by the web layer itself (a view, a decorator): status, message, the fields at fault."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []


# What a value of each pydantic error type should have been, in plain words (a field's own
# `description` says it better, and is used where the model has one).
EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "date_type": "a date as YYYY-MM-DD",
    "date_parsing": "a date as YYYY-MM-DD",
    "date_from_datetime_parsing": "a date as YYYY-MM-DD",
    "missing": "a value",
}


def _shown(value: Any) -> Any:
    if isinstance(value, str | int | float | bool | None):
        return value
    return json.dumps(value, default=str)[:200]


def _description(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str | None:
    """The `description` of the field a pydantic error points at, following nested models."""
    for part in loc:
        if model is None:
            return None
        fields = model.model_fields
        info = fields.get(str(part)) or next((f for f in fields.values() if f.alias == part), None)
        if info is None:
            return None
        if part == loc[-1]:
            return info.description
        nested = info.annotation
        model = nested if isinstance(nested, type) and issubclass(nested, BaseModel) else None
    return None


def validation_problems(error: ValidationError, model: type[BaseModel] | None = None) -> list[dict[str, Any]]:
    """Pydantic's errors as ours: `loc` joined with "." as the field, the input as the value, and what was
    expected in plain words: the field's description, or the words for the error's type."""
    problems = []
    for e in error.errors():
        field = ".".join(str(part) for part in e["loc"]) or "body"
        if e["type"] == "extra_forbidden":
            allowed = [f.alias or name for name, f in model.model_fields.items()] if model else []
            expected = f"one of {', '.join(allowed)}" if allowed else "no such field"
        elif e["type"] == "literal_error":
            expected = f"one of {e['ctx']['expected']}"
        else:
            expected = _description(model, e["loc"]) or EXPECTED.get(e["type"]) or e["msg"]
        value = None if e["type"] == "missing" else _shown(e.get("input"))
        problems.append({"field": field, "value": value, "expected": expected})
    return problems


def error_response(status: int, message: str, errors: list[dict[str, Any]] | None = None):
    """JSON for the API; a page for a browser on the site's pages, so an outage is not a JSON dump."""
    if not request.path.startswith("/api/") and request.accept_mimetypes.best == "text/html":
        # Rendered without context processors: Flask-Login's would load the user, from the database that may be down.
        page = current_app.jinja_env.get_template("error.html")
        return page.render(status=status, message=message, errors=errors or [], retry=request.url), status
    body: dict[str, Any] = {"error": {"status": status, "message": message}}
    if errors:
        body["error"]["errors"] = errors
    return jsonify(body), status


MAX_JSON_DEPTH = 32  # a screening is two levels deep; a protocol file about six


def _walk_json(value: Any) -> tuple[str, str] | None:
    """The first field that no handler can take: a NUL character in text, or nesting beyond MAX_JSON_DEPTH.

    Iterative, so a hostile document cannot exhaust the stack here.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path, "nul"
            continue
        if isinstance(item, dict):
            pairs: Any = item.items()
        elif isinstance(item, list):
            pairs = enumerate(item)
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            return path or "body", "depth"
        for key, child in pairs:
            if isinstance(key, str) and "\x00" in key:
                return path, "nul"
            stack.append((child, f"{path}.{key}" if path else str(key), depth + 1))
    return None


def _json_body() -> Any:
    """The parsed body; nesting too deep for the parser is reported as such, not as a server error."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        raise ApiError(
            400,
            "the JSON body is nested too deeply",
            [{"field": "body", "value": None, "expected": f"at most {MAX_JSON_DEPTH} levels of nesting"}],
        ) from None


def _may_need_walk(body: bytes) -> bool:
    """Whether the parsed body must be walked: only if its text could hold a NUL or nest too deeply.

    JSON can only carry a NUL as the escape `\\u0000` (a raw one is not JSON), and nesting needs a
    bracket a level: a body with neither has nothing to find, and most bodies are such. Scanning the
    bytes costs microseconds where walking a parsed screening cost a tenth of a millisecond.
    """
    return b"\\u0000" in body or b"\x00" in body or body.count(b"{") + body.count(b"[") >= MAX_JSON_DEPTH


def refuse_nul_characters() -> None:
    """Refuse text with NUL characters at the door, naming the field, before it reaches PostgreSQL."""
    # Multipart bodies are left to their views: parsing one here would apply the default size limit
    # before the batch upload view raises it.
    sources = (
        [request.args, request.form] if request.mimetype == "application/x-www-form-urlencoded" else [request.args]
    )
    field = next(
        (key for source in sources for key, value in source.items(multi=True) if "\x00" in key + value),
        None,
    )
    if field is None and request.is_json and _may_need_walk(request.get_data(cache=True)):
        found = _walk_json(_json_body())
        if found and found[1] == "depth":
            raise ApiError(
                400,
                "the JSON body is nested too deeply",
                [{"field": found[0], "value": None, "expected": f"at most {MAX_JSON_DEPTH} levels of nesting"}],
            )
        field = found[0] if found else None
    if field is not None:
        raise ApiError(
            400,
            "the request contains a NUL character",
            [{"field": field, "value": None, "expected": "text without NUL (\\u0000) characters"}],
        )


def init_app(app: Flask) -> None:
    from service.infra.models import ImmutableVersionError, db
    from service.infra.registry import VersionIntegrityError

    app.before_request(refuse_nul_characters)

    @app.teardown_request
    def roll_back_failures(error: BaseException | None) -> None:
        if error is not None:
            db.session.rollback()

    def rolled_back(handler):
        def handle(error):
            db.session.rollback()
            return handler(error)

        handle.__name__ = handler.__name__
        return handle

    @app.errorhandler(ApiError)
    @rolled_back
    def api_error(error: ApiError):
        return error_response(error.status, error.message, error.errors)

    @app.errorhandler(DomainError)
    @rolled_back
    def domain_error(error: DomainError):
        return error_response(http_status(error), error.message, error.problems)

    @app.errorhandler(ImmutableVersionError)
    @rolled_back
    def immutable(error: ImmutableVersionError):
        return error_response(409, f"{error}; start an amendment to change it")

    @app.errorhandler(VersionIntegrityError)
    @rolled_back
    def integrity(error: VersionIntegrityError):
        app.logger.critical("integrity: %s", error)
        return error_response(500, f"{error}; nothing was decided")

    @app.errorhandler(DBAPIError)
    @rolled_back
    def database_error(error: DBAPIError):
        app.logger.error("database error: %s", error)
        if "immutable" in str(error.orig) or "kept as recorded" in str(error.orig):
            return error_response(409, "published versions and stored screenings cannot change")
        if isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated:
            return error_response(503, "the database is not available; try again shortly")
        return error_response(500, "internal error; it has been logged")

    @app.errorhandler(SubjectInputErrors)
    @rolled_back
    def subject_errors(error: SubjectInputErrors):
        fields = [e.as_dict() for e in error.errors]
        return error_response(422, "the subject's data cannot be used as submitted", fields)

    @app.errorhandler(SubjectInputError)
    def subject_error(error: SubjectInputError):
        return error_response(422, "the subject's data cannot be used as submitted", [error.as_dict()])

    @app.errorhandler(RuleErrors)
    @rolled_back
    def rule_errors(error: RuleErrors):
        return error_response(422, str(error), [e.as_dict() for e in error.errors])

    @app.errorhandler(ProtocolError)
    @rolled_back
    def protocol_error(error: ProtocolError):
        return error_response(422, "the protocol is not valid", [{"message": p} for p in error.problems])

    @app.errorhandler(EngineError)
    @rolled_back
    def engine_error(error: EngineError):
        app.logger.error("engine error: %s", error)
        if isinstance(error, EngineCrashed | EngineTimeout):
            response, status = error_response(
                503, f"the decision engine failed on this subject ({error}); nothing was stored; it has been logged"
            )
            response.headers["Retry-After"] = "1"
            return response, status
        return error_response(503, "the decision engine could not decide this subject; it has been logged")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return error_response(413, f"the request body is larger than the {limit} MiB limit")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        response = make_response(*error_response(error.code or 500, error.description or error.name))
        # The headers the error itself carries: `Allow` on a 405, `Retry-After` on a 429, ...
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    @rolled_back
    def unexpected(error: Exception):
        app.logger.exception("unexpected error")
        return error_response(500, "internal error; it has been logged")
