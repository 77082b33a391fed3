"""Compiled protocol versions, held once per process and keyed by content hash.

Compiling costs a fifth of a second and the engine never frees a ruleset, so a
published version is compiled the first time a request needs it and kept;
requests never recompile it. Before a stored version is trusted, its rows are
hashed again and must match the hash recorded when it was published.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app

import rules
from rules.compiler import CompiledProtocol
from rules.errors import EligoError
from rules.protocol import ProtocolDef
from service.models import ProtocolVersion


class VersionIntegrityError(EligoError):
    """A published version's rows no longer hash to the hash recorded at publication."""


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: dict[str, CompiledProtocol] = {}

    def compiled(self, version: ProtocolVersion) -> CompiledProtocol:
        """The compiled form of a version, compiled once per content.

        Drafts are cached by the hash of their current content too: the engine never frees a
        ruleset (bench/compile_memory.py measures about 11 MB each), so compiling a draft on
        every preview would leak on every click; this way only a distinct edit costs one.
        """
        if version.content_hash and version.content_hash in self._compiled:
            return self._compiled[version.content_hash]
        definition = version.to_definition()
        if version.content_hash and definition.content_hash != version.content_hash:
            raise VersionIntegrityError(
                f"{version.protocol.code} version {version.number} no longer matches its published hash"
            )
        return self.compile(definition)

    def compile(self, definition: ProtocolDef) -> CompiledProtocol:
        """A definition's compiled form, compiled once per content hash."""
        key = definition.content_hash
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiled = rules.compile_protocol(definition)
                self._compiled[key] = compiled
            return compiled

    def __len__(self) -> int:
        return len(self._compiled)


_registry = Registry()


def init_app(app: Flask) -> None:
    """One registry per process, shared by every app in it, like the engine it feeds."""
    app.extensions["eligo.registry"] = _registry


def registry() -> Registry:
    return current_app.extensions["eligo.registry"]
