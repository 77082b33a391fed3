"""Eligo's web service: the screening API over the rules core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the app."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=1 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    if test_config is None:
        app.config.from_prefixed_env("ELIGO")
    else:
        app.config.from_mapping(test_config)

    from service import db, errors, registry

    errors.init_app(app)
    registry.init_app(app)
    db.init_app(app)

    from service import amendments_api, api

    app.register_blueprint(api.bp)
    app.register_blueprint(amendments_api.bp)
    return app
