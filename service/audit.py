"""The audit trail: every create, update, delete and publish of protocol data, with before and after.

Recorded in the same transaction as the change, so a change is never stored
without its entry; entries are written with a plain INSERT after the flush (the
rows have their ids then) and the database refuses to update or delete them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from service.infra.models import (
    AUDIT_TABLE,
    DRAFT,
    PUBLISHED,
    Cohort,
    Criterion,
    Protocol,
    ProtocolVersion,
    TestCase,
    User,
    ValueSet,
    Variable,
    utcnow,
)

AUDITED = (Protocol, ProtocolVersion, Cohort, Variable, Criterion, TestCase, ValueSet, User)
SECRET = {"password_hash", "token_hash"}
# Bookkeeping of sign-ins, not changes to an account: each failure has its own audit entry
# (service.auth.record_failure), and locking and unlocking (`locked_at`) are recorded as changes.
UNAUDITED = SECRET | {"failed_logins", "session_epoch"}


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _columns(obj: Any) -> dict[str, Any]:
    mapper = inspect(obj).mapper
    return {c.key: _value(getattr(obj, c.key)) for c in mapper.column_attrs if c.key not in SECRET}


def _summary(obj: Any) -> str:
    if isinstance(obj, Protocol):
        return obj.code
    if isinstance(obj, ProtocolVersion):
        return f"{obj.protocol.code} version {obj.number}" if obj.protocol else f"version {obj.number}"
    if isinstance(obj, User):
        return obj.username
    version = obj.version
    where = f"{version.protocol.code} v{version.number} " if version is not None and version.protocol else ""
    label = getattr(obj, "code", None) or getattr(obj, "name", None) or ""
    return f"{where}{type(obj).__name__.lower()} {label}".strip()


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    before, after = {}, {}
    state = inspect(obj)
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        if attr.key in UNAUDITED or not history.has_changes():
            continue
        before[attr.key] = _value(history.deleted[0]) if history.deleted else None
        after[attr.key] = _value(history.added[0]) if history.added else None
    return before, after


def entries(session: Session) -> list[dict[str, Any]]:
    """Audit rows for what this flush changes; lazy loads here must not flush again."""
    from service.auth import actor

    who, now = actor(), utcnow()
    with session.no_autoflush:
        return [
            {
                "at": now,
                "actor": who,
                "action": action,
                "entity": type(obj).__tablename__,
                "entity_id": getattr(obj, "id", None),
                "summary": _summary(obj)[:300],
                "before": before,
                "after": after,
            }
            for action, obj, before, after in _changed(session)
        ]


def _changed(session: Session) -> list[tuple[str, Any, dict[str, Any] | None, dict[str, Any] | None]]:
    found: list[tuple[str, Any, dict[str, Any] | None, dict[str, Any] | None]] = []
    for obj in session.new:
        if isinstance(obj, AUDITED):
            found.append(("create", obj, None, _columns(obj)))
    for obj in session.dirty:
        if isinstance(obj, AUDITED) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if not after:
                continue
            publishing = before.get("status") == DRAFT and after.get("status") == PUBLISHED
            found.append(("publish" if publishing else "update", obj, before, after))
    for obj in session.deleted:
        if isinstance(obj, AUDITED):
            found.append(("delete", obj, _columns(obj), None))
    return found


@event.listens_for(Session, "after_flush")
def record(session: Session, flush_context: Any) -> None:
    rows = entries(session)
    if rows:
        session.connection().execute(AUDIT_TABLE.insert(), rows)
