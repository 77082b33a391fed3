"""Compiled protocol versions, held once per process and keyed by content hash.

A version is compiled the first time a request needs it and kept while it is among
the most recently used; the ruleset itself lives in the engine process, which loads
each version once. Before a stored version is trusted, its rows are hashed again
and must match the hash recorded when it was published.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import Flask, current_app

import rules
from rules.compiler import CompiledProtocol
from rules.errors import EligoError
from rules.protocol import ProtocolDef
from service.infra.models import ProtocolVersion, VersionRow, db


class VersionIntegrityError(EligoError):
    """A published version's rows no longer hash to the hash recorded at publication."""


class Registry:
    """The most recently used compiled versions, `size` at most (a thousand draft edits stay flat)."""

    def __init__(self, size: int = 32) -> None:
        self._lock = threading.Lock()
        self._compiled: OrderedDict[str, CompiledProtocol] = OrderedDict()
        self.size = size

    def compiled(self, version: ProtocolVersion | VersionRow) -> CompiledProtocol:
        """The compiled form of a version, compiled once per content.

        Drafts are cached by the hash of their current content too, so a preview clicked again
        costs nothing; the engine process bounds what distinct edits cost it (rules/isolation.py).
        A version known by its row alone is loaded whole only when its content is not compiled yet.
        """
        if version.content_hash:
            with self._lock:
                cached = self._compiled.get(version.content_hash)
                if cached is not None:
                    self._compiled.move_to_end(version.content_hash)
                    return cached
        if isinstance(version, VersionRow):
            version = db.session.get_one(ProtocolVersion, version.id)
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
                while len(self._compiled) > self.size:
                    self._compiled.popitem(last=False)
            self._compiled.move_to_end(key)
            return compiled

    def __len__(self) -> int:
        return len(self._compiled)


_registry = Registry()


def init_app(app: Flask) -> None:
    """One registry per process, shared by every app in it, like the engine it feeds."""
    app.extensions["eligo.registry"] = _registry


def registry() -> Registry:
    return current_app.extensions["eligo.registry"]
