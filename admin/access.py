"""Access to the admin in one mixin: the roles a view admits, and the way out for everyone else."""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, request, url_for
from flask_login import current_user

from service.auth import has_role


class RoleAccess:
    """Admit `roles` (admins always); send signed-out visitors to the login page and back."""

    roles: tuple[str, ...] = ("writer", "reviewer")

    def is_accessible(self) -> bool:
        return has_role(current_user, *self.roles)

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("pages.login", next=request.full_path))
        abort(403)
