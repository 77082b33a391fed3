"""The decision engine each service process uses: isolated in a child process unless configured not to be.

Configuration: ENGINE_ISOLATED (default True), ENGINE_TIMEOUT seconds per call (default 5),
ENGINE_MAX_RULESETS and ENGINE_MAX_DRAFT_RULESETS before a child is retired (defaults 64
and 4), ENGINE_CHILD_MAIN (the child's entry point, "module:function"; tests point it at a
faulty engine).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, current_app

from rules.compiler import CompiledProtocol
from rules.engine import DurableEngine, Evaluation, default_engine
from rules.isolation import CHILD_MAIN, EnginePool, IsolatedEngine
from service.models import DRAFT, ProtocolVersion


class InProcess:
    """The engine in this process, with the batch call the isolated one has."""

    def __init__(self, engine: DurableEngine) -> None:
        self._engine = engine

    def evaluate(self, compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation:
        return self._engine.evaluate(compiled, values)

    def evaluate_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Evaluation]:
        return [self._engine.evaluate(compiled, values) for values in subjects]


_shared: dict[tuple[float, int, str], IsolatedEngine] = {}
_shared_lock = threading.Lock()
_pools: dict[tuple[bool, int, float], EnginePool] = {}


def _isolated(timeout: float, max_rulesets: int, child_main: str) -> IsolatedEngine:
    key = (timeout, max_rulesets, child_main)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = IsolatedEngine(timeout=timeout, max_rulesets=max_rulesets, child_main=child_main)
        return _shared[key]


def init_app(app: Flask) -> None:
    """Two engine processes per web process: one for published versions, one for drafts.

    Published versions are few and used all day, so their process keeps many rulesets
    (ENGINE_MAX_RULESETS, default 64). Every draft edit previewed is a new ruleset the engine
    never frees, so drafts go to a process retired after ENGINE_MAX_DRAFT_RULESETS (default 4):
    a protocol writer's afternoon of edits costs a few respawns, and memory stays flat.
    Apps in one process with the same settings share them, as they share the registry.
    """
    config = app.config
    if not config.get("ENGINE_ISOLATED", True):
        app.extensions["eligo.engine"] = app.extensions["eligo.draft_engine"] = InProcess(default_engine())
        return
    timeout, child_main = float(config.get("ENGINE_TIMEOUT", 5.0)), str(config.get("ENGINE_CHILD_MAIN", CHILD_MAIN))
    app.extensions["eligo.engine"] = _isolated(timeout, int(config.get("ENGINE_MAX_RULESETS", 64)), child_main)
    app.extensions["eligo.draft_engine"] = _isolated(
        timeout, int(config.get("ENGINE_MAX_DRAFT_RULESETS", 4)), child_main
    )


def engine(version: ProtocolVersion | None = None) -> IsolatedEngine | InProcess:
    """The engine for a version: the drafts' process for a draft, the published versions' otherwise."""
    if version is not None and version.status == DRAFT:
        return current_app.extensions["eligo.draft_engine"]
    return current_app.extensions["eligo.engine"]


def replay_engine(version: ProtocolVersion) -> EnginePool | InProcess:
    """For replaying a whole log under a version: one engine process per core (ENGINE_REPLAY_PROCESSES)."""
    config = current_app.config
    if not config.get("ENGINE_ISOLATED", True):
        return engine(version)
    size = int(config.get("ENGINE_REPLAY_PROCESSES", os.cpu_count() or 1))
    key = (version.status == DRAFT, size, float(config.get("ENGINE_TIMEOUT", 5.0)))
    with _shared_lock:
        if key not in _pools:
            caps = int(
                config.get("ENGINE_MAX_DRAFT_RULESETS" if key[0] else "ENGINE_MAX_RULESETS", 4 if key[0] else 64)
            )
            _pools[key] = EnginePool(
                size, timeout=key[2], max_rulesets=caps, child_main=str(config.get("ENGINE_CHILD_MAIN", CHILD_MAIN))
            )
        return _pools[key]


def draft_engine() -> IsolatedEngine | InProcess:
    return current_app.extensions["eligo.draft_engine"]
