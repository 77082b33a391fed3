"""Pages for people: sign in and out (screening pages come next)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_from_directory, url_for
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from service.auth import check_password
from service.models import User, db

bp = Blueprint("pages", __name__)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never send a user elsewhere after signing in."""
    if not target or urlsplit(target).netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.execute(select(User).filter_by(username=form.username.data)).scalar_one_or_none()
        if user is not None and check_password(user, form.password.data):
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Unknown username or wrong password.")
    return render_template("login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
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
