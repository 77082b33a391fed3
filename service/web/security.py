"""Security headers (flask-talisman): a strict Content-Security-Policy, no framing, no sniffing.

Our own pages load only our own scripts and styles. Flask-Admin 2's templates use inline scripts
and `onclick` handlers, which nonces cannot cover, so under /admin scripts and styles may also be
inline; nothing is ever loaded from elsewhere. HTTPS is the reverse proxy's business: with
ELIGO_HTTPS=1 Talisman redirects to HTTPS, sends HSTS and marks the session cookie secure.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_talisman import Talisman

OWN_PAGES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
ADMIN_PAGES = {**OWN_PAGES, "script-src": "'self' 'unsafe-inline'", "style-src": "'self' 'unsafe-inline'"}


def _policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def init_app(app: Flask) -> None:
    https = app.config["HTTPS"]
    admin_policy = _policy(ADMIN_PAGES)

    @app.after_request
    def no_store(response: Response) -> Response:
        """Subject data and signed-in pages are never kept by a browser's or a proxy's cache."""
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    # Registered before Talisman so that it runs after Talisman's own hook (Flask runs them in reverse).
    @app.after_request
    def admin_policy_for_admin_pages(response: Response) -> Response:
        if request.path.startswith("/admin"):
            response.headers["Content-Security-Policy"] = admin_policy
        return response

    Talisman(
        app,
        force_https=https,
        strict_transport_security=https,
        session_cookie_secure=https,
        content_security_policy=OWN_PAGES,
        frame_options="DENY",
        referrer_policy="same-origin",
        permissions_policy={"camera": "()", "microphone": "()", "geolocation": "()"},
    )
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
