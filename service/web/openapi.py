"""The API's declaration at work: spectree validates each view's query, headers and JSON body against the
models of service/schemas.py, and generates /api/v1/openapi.json from the same models.

Spectree was chosen because it decorates plain Flask views and blueprints: the app, the blueprints, the
error handlers and the one error body stay ours, where APIFlask and flask-openapi3 replace the Flask
app class and answer errors in their own shape. Its hooks turn a pydantic error into our error body.

Responses are checked against their models only when `API_CHECK_RESPONSES` is set (the tests set it):
checking a 42 KB explanation on every screening would cost the hot path, and materialising a response
would stop the CSV exports from streaming.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import current_app, make_response, request
from pydantic import ValidationError
from spectree import SecurityScheme, SpecTree
from spectree.models import SecureType, SecuritySchemeData
from spectree.plugins.flask_plugin import FlaskPlugin

from service import schemas
from service.errors import ApiError, validation_problems

MAX_ID = schemas.MAX_ID


class Plugin(FlaskPlugin):
    """Spectree's Flask plugin, with a JSON body that is not an object refused as such (400), and the
    response check behind `API_CHECK_RESPONSES`."""

    def request_validation(self, request, query, json, form, headers, cookies):
        if json is not None and request.method not in ("GET", "DELETE"):
            data = request.get_json(silent=True)
            required = any(field.is_required() for field in json.model_fields.values())
            if not isinstance(data, dict) and (request.get_data() or required):
                raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)")
        super().request_validation(request, query, json, form, headers, cookies)

    def validate_response(self, resp, resp_model, skip_validation, force_resp_serialize):
        if not current_app.config["API_CHECK_RESPONSES"]:
            return make_response(resp), None
        return super().validate_response(resp, resp_model, skip_validation, force_resp_serialize)


def _refuse(_request: Any, _response: Any, error: Exception | None, _instance: Any, _adapter: Any = None) -> None:
    """A request that does not fit its model: our error body, naming each field (spectree's own is not)."""
    if not isinstance(error, ValidationError):
        return
    model = getattr(schemas, error.title, None)
    problems = validation_problems(error, model)
    sentence = _sentence(error, problems)
    if model is not None and issubclass(model, schemas.Headers):
        names = ", ".join(sorted({str(p["field"]) for p in problems}))
        raise ApiError(400, f"the {names} header is not usable", problems)
    if model is not None and issubclass(model, schemas.Query):
        raise ApiError(400, sentence, problems)
    if all(e["type"] == "extra_forbidden" for e in error.errors()):
        raise ApiError(400, "unknown fields in the body", problems)
    raise ApiError(422, sentence, problems)


def _sentence(error: ValidationError, problems: list[dict[str, Any]]) -> str:
    """`protocol` is required; `version` must be a version number (1, 2, …)."""
    parts = [
        f"`{p['field']}` is required" if e["type"] == "missing" else f"`{p['field']}` must be {p['expected']}"
        for e, p in zip(error.errors(), problems, strict=True)
    ]
    return "; ".join(parts[:3]) + (f" (and {len(parts) - 3} more)" if len(parts) > 3 else "")


def _unchecked_response(_request: Any, _response: Any, error: Exception | None, *_: Any) -> None:
    if error is not None:  # only with API_CHECK_RESPONSES: the declaration and the code disagree
        raise RuntimeError(f"the response of {request.endpoint} does not fit its declared schema: {error}")


spec = SpecTree(
    "flask",
    backend=Plugin,
    title="Eligo screening API",
    version="1",
    description=(
        "Decide clinical-trial eligibility from protocol criteria kept as data, explained criterion by "
        "criterion. Every stored screening records the exact protocol version and content hash that decided "
        'it. Errors share one shape: `{"error": {"status", "message", "errors": [{"field", "value", '
        '"expected"}]}}`.'
    ),
    mode="strict",
    before=_refuse,
    after=_unchecked_response,
    validation_error_model=schemas.ErrorBody,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer"))],
    security={"bearer": []},
)

# Bodies that are not JSON, which spectree does not declare: a protocol file, and a CSV of subjects.
RAW_BODIES = {
    "/api/v1/protocols/import": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
    "/api/v1/screenings/batch": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
        },
    },
}


def document() -> dict[str, Any]:
    """The OpenAPI document of the app's decorated views, generated once per process."""
    if not hasattr(spec, "_spec"):
        spec.app = current_app._get_current_object()  # type: ignore[attr-defined]
        generated = copy.deepcopy(spec.spec)
        for path, operations in generated["paths"].items():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    schema = parameter.get("schema", {})
                    if parameter["in"] == "path" and schema.get("type") == "integer":
                        schema.update(minimum=0, maximum=MAX_ID)  # the app's `int` converter: 32-bit ids
                if path in RAW_BODIES and "requestBody" not in operation:
                    operation["requestBody"] = {"required": True, "content": RAW_BODIES[path]}
        spec._spec = generated
    return spec._spec


def responses(ok: type | None = None, *errors: int, status: int = 200, **more: type | None):
    """The documented answers of a view: its success model and every error status it can send
    (401 and 403 for every view: each needs a signed-in user with a role)."""
    from spectree import Response

    codes: dict[str, Any] = {f"HTTP_{status}": ok}
    codes.update({f"HTTP_{code}": schemas.ErrorBody for code in (401, 403, *errors)})
    codes.update(more)
    return Response(**codes)
