"""The decision engine each service process uses: isolated in a child process unless configured not to be.

Configuration: ENGINE_ISOLATED (default True), ENGINE_TIMEOUT seconds per call (default 5),
ENGINE_MAX_RULESETS and ENGINE_MAX_DRAFT_RULESETS the versions a child holds before it deletes
the least recently used from its engine (defaults 64 and 4), ENGINE_REPLAY_PROCESSES for
impact replays (default one per core), ENGINE_CHILD_MAIN (the child's entry point,
"module:function"; tests point it at a faulty engine).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from rules.engine import DurableEngine, default_engine
from rules.isolation import EnginePool, IsolatedEngine
from service.infra.models import DRAFT, ProtocolVersion, VersionRow

_shared: dict[tuple[Any, ...], IsolatedEngine | EnginePool] = {}
_shared_lock = threading.Lock()


def _options(config: Mapping[str, Any], drafts: bool) -> dict[str, Any]:
    """The isolated engine's settings, for the published versions' processes or the drafts'."""
    cap = "ENGINE_MAX_DRAFT_RULESETS" if drafts else "ENGINE_MAX_RULESETS"
    return {
        "timeout": config["ENGINE_TIMEOUT"],
        "max_rulesets": config[cap],
        "child_main": config["ENGINE_CHILD_MAIN"],
    }


def _shared_engine(options: dict[str, Any], processes: int | None = None) -> IsolatedEngine | EnginePool:
    """Apps in one process with the same settings share their engines, as they share the registry."""
    key = (processes, *sorted(options.items()))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = IsolatedEngine(**options) if processes is None else EnginePool(processes, **options)
        return _shared[key]


def init_app(app: Flask) -> None:
    """Two engine processes per web process: one for published versions, one for drafts.

    Published versions are few and used all day, so their process keeps many rulesets
    (ENGINE_MAX_RULESETS, default 64). Every draft edit previewed is a new ruleset, so the
    drafts' process keeps the last ENGINE_MAX_DRAFT_RULESETS (default 4) and deletes older ones
    from its engine, which frees them: a writer's afternoon of edits leaves memory flat, and
    the process is replaced only if it crashes.
    """
    if not app.config["ENGINE_ISOLATED"]:
        app.extensions["eligo.engine"] = app.extensions["eligo.draft_engine"] = default_engine()
        return
    app.extensions["eligo.engine"] = _shared_engine(_options(app.config, drafts=False))
    app.extensions["eligo.draft_engine"] = _shared_engine(_options(app.config, drafts=True))


def engine(version: ProtocolVersion | VersionRow | None = None) -> IsolatedEngine | DurableEngine:
    """The engine for a version: the drafts' process for a draft, the published versions' otherwise."""
    if version is not None and version.status == DRAFT:
        return current_app.extensions["eligo.draft_engine"]
    return current_app.extensions["eligo.engine"]


def replay_engine(version: ProtocolVersion | VersionRow) -> EnginePool | IsolatedEngine | DurableEngine:
    """For replaying a whole log under a version: one engine process per core (ENGINE_REPLAY_PROCESSES)."""
    config = current_app.config
    if not config["ENGINE_ISOLATED"]:
        return engine(version)
    processes = config["ENGINE_REPLAY_PROCESSES"]
    return _shared_engine(_options(config, drafts=version.status == DRAFT), processes)


def draft_engine() -> IsolatedEngine | DurableEngine:
    return current_app.extensions["eligo.draft_engine"]
