"""The decision engine each service process uses: isolated in a child process unless configured not to be.

Configuration: ENGINE_ISOLATED (default True), ENGINE_TIMEOUT seconds per call (default 5),
ENGINE_MAX_RULESETS before the child is retired (default 8), ENGINE_CHILD_MAIN (the
child's entry point, "module:function"; tests point it at a faulty engine).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, current_app

from rules.compiler import CompiledProtocol
from rules.engine import DurableEngine, Evaluation, default_engine
from rules.isolation import CHILD_MAIN, IsolatedEngine


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


def init_app(app: Flask) -> None:
    """Apps in one process with the same settings share one engine child, as they share the registry."""
    config = app.config
    if not config.get("ENGINE_ISOLATED", True):
        app.extensions["eligo.engine"] = InProcess(default_engine())
        return
    key = (
        float(config.get("ENGINE_TIMEOUT", 5.0)),
        int(config.get("ENGINE_MAX_RULESETS", 8)),
        str(config.get("ENGINE_CHILD_MAIN", CHILD_MAIN)),
    )
    with _shared_lock:
        if key not in _shared:
            _shared[key] = IsolatedEngine(timeout=key[0], max_rulesets=key[1], child_main=key[2])
        app.extensions["eligo.engine"] = _shared[key]


def engine() -> IsolatedEngine | InProcess:
    return current_app.extensions["eligo.engine"]
