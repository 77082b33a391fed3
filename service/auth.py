"""Accounts, roles and how a request proves who it is.

Pages use a session login (Flask-Login) with CSRF tokens on every form. API
clients send `Authorization: Bearer <token>`; tokens are stored as SHA-256 so
checking one costs microseconds, not the scrypt of a password. An API call
carried by a browser session must also send the CSRF token (X-CSRFToken), so
another site cannot make a logged-in browser publish or screen (checked for
the whole API in service/web/api_v1.py).

Roles (DESIGN.md section 6): a writer edits drafts and test cases, a reviewer
compares, replays and publishes, a screener screens subjects of their own site
and sees that site's log, an admin manages users and may do everything.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, Request, g, has_request_context, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import bindparam, select
from werkzeug.security import check_password_hash, generate_password_hash

from service.errors import ApiError, Forbidden, InvalidInput
from service.infra.models import User, db
from service.vocabulary import Role

if TYPE_CHECKING:
    from service.versions import Signature

ROLES = tuple(Role)
login_manager = LoginManager()
csrf = CSRFProtect()
F = TypeVar("F", bound=Callable[..., Any])


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    username: str, role: str, password: str | None = None, site: str | None = None
) -> tuple[User, str, str]:
    """A new account; returns it with its password and API token, which are never shown again."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "screener" and not (site or "").strip():
        raise ValueError("a screener needs a site: they screen for it and see its log only")
    password = password or secrets.token_urlsafe(12)
    token = secrets.token_urlsafe(24)
    user = User(
        username=username,
        role=role,
        site=site,
        password_hash=generate_password_hash(password),
        token_hash=hash_token(token),
    )
    db.session.add(user)
    db.session.flush()
    return user, password, token


# Checked when the username is unknown, so that answer takes as long as a wrong password does.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


def check_password(user: User | None, password: str) -> bool:
    """The password's hash is always computed, for unknown and locked accounts too: timing tells nothing."""
    matches = check_password_hash(user.password_hash if user is not None else _DUMMY_HASH, password)
    return user is not None and bool(user.active) and user.locked_at is None and matches


def record_failure(action: str, username: str, user: User | None, reason: str) -> None:
    """An audit entry for a refused sign-in or signature (21 CFR 11.300(d)), in its own transaction,
    so the refusal's rollback cannot take it back."""
    from service.infra.models import AUDIT_TABLE, utcnow

    who = actor()
    with db.engine.begin() as connection:
        connection.execute(
            AUDIT_TABLE.insert(),
            {
                "at": utcnow(),
                "actor": who if who != "system" else username[:80],
                "action": action,
                "entity": "users",
                "entity_id": user.id if user is not None else None,
                "summary": f"{username}: {reason}"[:300],
                "before": None,
                "after": {"address": request.remote_addr} if has_request_context() else None,
            },
        )


def sign(user: User | TokenUser, password: str | None, reason: str | None) -> Signature:
    """An electronic signature: the signed-in user re-enters their password at the moment of signing.

    A wrong password is refused (403) and logged, so repeated attempts are visible.
    """
    from flask import current_app

    from service.versions import Signature

    problems = []
    if not isinstance(reason, str) or not reason.strip():
        problems.append({"field": "reason", "value": reason, "expected": "the reason for approving, in words"})
    if not isinstance(password, str) or not password:
        problems.append({"field": "password", "value": None, "expected": f"the password of {user.username}"})
    if problems:
        raise InvalidInput("a publication is signed with your password and a reason", problems)
    assert isinstance(password, str) and isinstance(reason, str)  # both checked just above
    user = account(user)
    if not check_password(user, password):
        current_app.logger.warning("signature refused: wrong password for %s", user.username)
        record_failure("signature_failed", user.username, user, "signature refused: the password does not match")
        raise Forbidden(
            "the signature was refused: the password does not match",
            [{"field": "password", "value": None, "expected": f"the password of {user.username}"}],
        )
    return Signature(user.username, reason.strip())


def has_role(user: Any, *roles: str) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and (user.role == "admin" or user.role in roles)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """`<id>:<epoch>`: a session from before the user's last sign-out or password change is refused."""
    number, _, epoch = user_id.partition(":")
    if not number.isdigit() or not epoch.isdigit():
        return None
    user = db.session.get(User, int(number))
    if user is None or not user.active or user.locked_at is not None or user.session_epoch != int(epoch):
        return None
    return user


def end_sessions(user: User | TokenUser) -> None:
    """Invalidate every session of this user, on the server: cookies issued before stop working."""
    user = account(user)
    user.session_epoch = (user.session_epoch or 0) + 1


@dataclass(frozen=True, eq=False)
class TokenUser(UserMixin):
    """The account an API token signs in, as a call uses it: who, with which role, for which site.

    Read as four columns rather than loaded as an ORM object: every API call signs in, and the
    object's loading and its expiry at the commit cost a screening more than the statement did. What
    changes the account or checks its password works on the account itself (`account`).
    """

    id: int
    username: str
    role: str
    site: str | None


def account(user: User | TokenUser) -> User:
    """The stored account of a signed-in user, however they signed in."""
    return user if isinstance(user, User) else db.session.get_one(User, user.id)


# Built once, bound per request: an API call signs in with this statement every time.
_USERS = User.__table__
_BY_TOKEN = select(_USERS.c.id, _USERS.c.username, _USERS.c.role, _USERS.c.site).where(
    _USERS.c.token_hash == bindparam("token_hash"), _USERS.c.active.is_(True)
)


@login_manager.request_loader
def _load_from_token(req) -> TokenUser | None:
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    row = db.session.execute(_BY_TOKEN, {"token_hash": hash_token(header[7:].strip())}).first()
    if row is None:
        return None
    g.token_auth = True
    return TokenUser(*row)


def api_roles(*roles: str) -> Callable[[F], F]:
    """Refuse an API call from anyone without one of these roles: 401 if unknown, 403 if not allowed."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                raise ApiError(401, "sign in, or send `Authorization: Bearer <token>`")
            if roles and not has_role(current_user, *roles):
                raise ApiError(403, f"this needs the role {' or '.join(roles)}; you are {current_user.role}")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def page_roles(*roles: str) -> Callable[[F], F]:
    """The same for pages: to the login page if signed out, 403 if the role does not allow it."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("pages.login", next=request.full_path))
            if roles and not has_role(current_user, *roles):
                from flask import abort

                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


class NoSite(Forbidden):
    """A screener account without a site: it may see nothing (an empty scope never means every site)."""


def own_site() -> str | None:
    """The one site a screener may see and screen for; None for roles (and the CLI) that see every site.

    A screener without a site is refused outright rather than given an empty filter.
    """
    from flask import has_request_context

    if has_request_context() and current_user.is_authenticated and current_user.role == "screener":
        if not (current_user.site or "").strip():
            raise NoSite("your account has no site; ask an admin to give it one")
        return current_user.site
    return None


def check_site(site: str) -> None:
    """Refuse a screener acting for another site than their own."""
    from service.screenings import check_site as check

    check(site, own_site())


def actor() -> str:
    """Who is acting, for the audit trail and the records: the user, or what the app context says (cli)."""
    from flask import has_app_context, has_request_context

    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user.username
    if has_app_context():
        return g.get("actor", "system")
    return "system"


def _session_timeouts(app: Flask) -> None:
    """Idle and absolute session timeouts (SESSION_IDLE_MINUTES, default 30; SESSION_MAX_HOURS, default 12)."""
    from flask_login import logout_user

    from service.infra.models import utcnow

    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    absolute = app.config["SESSION_MAX_HOURS"] * 3600

    @app.before_request
    def expire_sessions() -> None:
        if "_user_id" not in session:
            return
        now = utcnow().timestamp()
        started, seen = session.get("signed_in_at"), session.get("seen_at")
        if not isinstance(started, int | float) or not isinstance(seen, int | float):
            stale = True
        else:
            stale = now - seen > idle or now - started > absolute
        if stale:
            logout_user()
            session.clear()
            return
        session["seen_at"] = now


def start_session(user: User) -> None:
    """Sign a user in with the times the timeouts are measured from."""
    from flask_login import login_user

    from service.infra.models import utcnow

    login_user(user)
    session["signed_in_at"] = session["seen_at"] = utcnow().timestamp()


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for a request that sends no cookie
    (every API call with a token): an empty session is all such a request can have."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = _CookieSessions()
    login_manager.init_app(app)
    _session_timeouts(app)
    login_manager.login_view = "pages.login"
    csrf.init_app(app)
