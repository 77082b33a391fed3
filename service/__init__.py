"""Eligo's web service: the screening API over the rules core."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from service.infra import settings
from service.web.json_provider import FastJSONProvider


def _instance_secret(app: Flask) -> str:
    """A secret key kept in the instance folder, made on first start, so sessions survive restarts."""
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class BoundedInt(IntegerConverter):
    """Ids are 32-bit integers in the database: a larger number in a URL matches no route (404)."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the app."""
    app = Flask(__name__, instance_relative_config=True, template_folder="web/templates", static_folder="web/static")
    app.json = FastJSONProvider(app)
    checked = settings.load(test_config).as_config()
    # Flask's own keys from a test's mapping too (TESTING, WTF_CSRF_ENABLED...), Eligo's checked.
    app.config.from_mapping({**(test_config or {}), **checked}, JSON_SORT_KEYS=False)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(app)

    from service import audit, auth, errors  # noqa: F401  (audit: its listener)
    from service.infra import db, engine, queue, registry
    from service.web import security

    app.url_map.converters["int"] = BoundedInt
    errors.init_app(app)
    security.init_app(app)
    registry.init_app(app)
    engine.init_app(app)
    auth.init_app(app)
    db.init_app(app)
    queue.init_app(app)

    from service.web import api_v1, fhir_pages, pages, screening_pages

    api_v1.init_app(app)
    app.register_blueprint(pages.bp)
    pages.limiter.init_app(app)
    app.register_blueprint(screening_pages.bp)
    app.register_blueprint(fhir_pages.bp)

    import admin

    admin.init_app(app)
    return app
