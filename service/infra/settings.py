"""Every setting Eligo reads, with its type and default, in one place.

Settings come from `ELIGO_*` environment variables (`ELIGO_DATABASE_URL`, `ELIGO_ENGINE_TIMEOUT`...) or,
in tests, from the mapping given to `create_app`. They are checked once, at start: a wrong value stops the
service with the setting's name and what it expected, instead of failing on the first request that reads it.
The checked values are written into `app.config` under their upper-case names, so Flask's extensions (the
rate limiter, the session cookie) and a test adjusting one value at run time see the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rules.errors import EligoError
from rules.isolation import CHILD_MAIN


class SettingsError(EligoError):
    """A setting with a value of the wrong kind: named, with what it expected."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELIGO_", extra="ignore", case_sensitive=False)

    secret_key: str = Field("", description="signs sessions; default: a random key kept in the instance folder")
    database_url: str = Field("", description="SQLAlchemy URL; default: SQLite in the instance folder")
    https: bool = Field(False, description="served behind TLS: HSTS and secure cookies")
    max_content_length: int = Field(1024 * 1024, gt=0, description="largest request body, bytes")
    demo_accounts: bool = Field(True, description="`eligo init-db` creates the demo accounts on an empty database")

    session_idle_minutes: float = Field(30, ge=0)
    session_max_hours: float = Field(12, ge=0)
    login_limit_per_address: str = "30 per minute"
    login_limit_per_account: str = "10 per minute"
    login_max_failures: int = Field(5, gt=0)
    ratelimit_storage_uri: str = Field("memory://", description="Flask-Limiter storage, e.g. redis://host:6379")

    engine_isolated: bool = Field(True, description="decide in engine processes apart from the web worker")
    engine_timeout: float = Field(5.0, gt=0, description="seconds an engine process may take for one call")
    engine_max_rulesets: int = Field(64, gt=0, description="published versions kept in one engine process")
    engine_max_draft_rulesets: int = Field(4, gt=0, description="draft versions kept in the drafts' process")
    engine_child_main: str = CHILD_MAIN
    engine_replay_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, gt=0)

    batch_inline_rows: int = Field(1000, ge=0, description="larger CSV batches become jobs")
    batch_inline: bool = Field(False, description="run batch jobs in the request (tests)")
    impact_inline: bool = Field(False, description="run impact replays in the request (tests)")
    impact_chunk: int = Field(500, gt=0, description="screenings an impact replay decides and commits at once")

    queue: str = Field(
        "", description="job queue: sqlite:///file, redis://host:6379/0 or postgresql://…; default: beside the database"
    )
    queue_lease_seconds: float = Field(120, gt=0, description="a job whose worker is silent this long is taken over")
    queue_sweep_seconds: float = Field(5, gt=0, description="how often each job worker looks for jobs to take over")
    queue_max_attempts: int = Field(3, gt=0, description="takeovers before a job fails as interrupted")

    log_page_size: int = Field(50, gt=0, description="screenings per page of the log")
    api_check_responses: bool = Field(False, description="check every API answer against its declared model (tests)")

    def as_config(self) -> dict[str, Any]:
        return {name.upper(): value for name, value in self.model_dump().items()}


class _GivenOnly(Settings):
    """The same settings, read from the mapping given and nothing else."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, **sources: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load(overrides: Mapping[str, Any] | None) -> Settings:
    """The environment's settings, or (tests) the given mapping's alone, checked."""
    try:
        if overrides is None:
            return Settings()
        known = {key.lower(): value for key, value in overrides.items() if key.lower() in Settings.model_fields}
        return _GivenOnly(**known)  # a test's app must not pick up the developer's environment
    except ValidationError as error:
        problems = [
            f"ELIGO_{'.'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}" for e in error.errors()
        ]
        raise SettingsError("settings are not valid: " + "; ".join(problems)) from None
