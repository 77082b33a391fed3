"""Compiled protocol versions, held once per process.

Compiling costs a fifth of a second and the engine never frees a ruleset, so a
version is compiled the first time it is asked for and kept: requests never
compile. Until versions live in the database this serves the shipped seed.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app

import rules
from rules.compiler import CompiledProtocol


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: dict[str, CompiledProtocol] = {}

    def add(self, protocol: rules.ProtocolDef) -> CompiledProtocol:
        with self._lock:
            compiled = self._compiled.get(protocol.protocol)
            if compiled is None or compiled.content_hash != protocol.content_hash:
                compiled = rules.compile_protocol(protocol)
                self._compiled[protocol.protocol] = compiled
            return compiled

    def get(self, protocol: str) -> CompiledProtocol | None:
        return self._compiled.get(protocol)

    def all(self) -> list[CompiledProtocol]:
        return list(self._compiled.values())


def init_app(app: Flask) -> None:
    registry = Registry()
    registry.add(rules.seed_protocol())
    app.extensions["eligo.registry"] = registry


def registry() -> Registry:
    return current_app.extensions["eligo.registry"]
