"""The service's words as types: a version's status, a job's status, an account's role.

They are `StrEnum`s so that they are stored, compared and sent as the plain strings they always were
(`VersionStatus.DRAFT == "draft"`), while the code that uses them is checked for typos.
"""

from __future__ import annotations

from enum import StrEnum


class VersionStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class RunStatus(StrEnum):
    """An impact replay's or a batch job's state."""

    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Role(StrEnum):
    WRITER = "writer"
    REVIEWER = "reviewer"
    SCREENER = "screener"
    ADMIN = "admin"
