"""Pages for people: sign in and out (screening pages come next)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from service.auth import check_password, end_sessions, record_failure, start_session
from service.infra.models import User, db, utcnow

bp = Blueprint("pages", __name__)
# Sign-in attempts are throttled per address and per account (LOGIN_LIMIT_PER_ADDRESS and
# LOGIN_LIMIT_PER_ACCOUNT); counts live in each process unless RATELIMIT_STORAGE_URI names a shared store.
limiter = Limiter(key_func=get_remote_address, default_limits=[])


@limiter.request_filter
def _api_call() -> bool:
    """The API has no rate limits (it signs in with tokens, not passwords): its calls skip the limiter's
    look-ups, which cost a screening a tenth of a millisecond."""
    return request.path.startswith("/api/")


def _per_address() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ADDRESS"]


def _per_account() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ACCOUNT"]


def _account_key() -> str:
    return "account:" + (request.form.get("username") or "").strip().lower()[:80]


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never send a user elsewhere after signing in."""
    if not target or urlsplit(target).netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_per_address, methods=["POST"])
@limiter.limit(_per_account, key_func=_account_key, methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data.strip()
        user = db.session.execute(select(User).filter_by(username=username)).scalar_one_or_none()
        if check_password(user, form.password.data):
            user.failed_logins = 0
            db.session.commit()
            start_session(user)
            return redirect(_safe_next(request.args.get("next")))
        _refused(username, user)
        form.password.errors.append("Unknown username or wrong password.")
    return render_template("login.html", form=form)


def _refused(username: str, user: User | None) -> None:
    """Count the failure against a known account, lock it after LOGIN_MAX_FAILURES, and audit it."""
    reason = "unknown username"
    if user is not None:
        if user.locked_at is not None:
            reason = "account locked"
        elif not user.active:
            reason = "account inactive"
        else:
            user.failed_logins = (user.failed_logins or 0) + 1
            reason = f"wrong password ({user.failed_logins} in a row)"
            if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
                user.locked_at = utcnow()
                reason += "; account locked until an admin unlocks it"
        db.session.commit()
    current_app.logger.warning("sign-in refused for %r: %s", username[:80], reason)
    record_failure("signin_failed", username, user, reason)


@bp.post("/logout")
@login_required
def logout():
    """Sign out on the server too: every session cookie of this user stops working."""
    end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("pages.login"))


@bp.get("/")
@login_required
def home():
    return render_template("home.html")


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on every page, the admin's included; answer it rather than log a 404."""
    return send_from_directory(current_app.static_folder or "static", "favicon.svg", mimetype="image/svg+xml")
