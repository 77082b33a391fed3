"""The JSON API, version 1: one parent blueprint under /api/v1, holding the API's blueprints by feature.

What every API call shares is said here once: the prefix, the OpenAPI document, and how a call proves
it is not forged. Endpoints are `api_v1.<child>.<view>` (`api_v1.api.get_screening`,
`api_v1.amendments.get_impact`, `api_v1.fhir_api.prefill`). Errors are answered by the app's handlers
(service/errors.py), which answer JSON for any path under /api/: a URL that matches no route never
reaches a blueprint, and its 404 must be JSON too.
"""

from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, request
from flask_login import current_user

from service.auth import csrf
from service.web import amendments_api, api, fhir_api
from service.web.openapi import document

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
CHILDREN = (api.bp, amendments_api.bp, fhir_api.bp)
for child in CHILDREN:
    bp.register_blueprint(child)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI document, generated from the views' declarations (service/schemas.py)."""
    return jsonify(document())


@bp.before_request
def csrf_for_browser_sessions() -> None:
    """A write carried by a browser session needs the CSRF header (X-CSRFToken), so another site cannot make a
    signed-in browser publish or screen; a client with a bearer token needs nothing more."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    current_user._get_current_object()  # load the user (sets g.token_auth for bearer tokens)
    if current_user.is_authenticated and not g.get("token_auth"):
        csrf.protect()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # Flask-WTF's own check (every POST, form token) is not the API's: the hook above replaces it. Its
    # exemptions are looked up by the blueprint a request is routed to, which is a child, never the parent.
    for child in CHILDREN:
        csrf.exempt(child)
