"""Run the durable-rules engine in a child process, so that its faults stay there.

The engine is C code: a segfault would take the whole web worker down with every
request it was serving, and a hang would block it forever; neither can be caught
in-process. So each process that decides subjects talks to one child process that
holds the engine. A child that crashes or overruns its time limit is killed and
replaced; the caller gets `EngineCrashed` or `EngineTimeout` for that call alone.

The child also bounds memory: the engine never frees a ruleset (about 11 MB each,
see bench/compile_memory.py), so after `max_rulesets` distinct versions the child
is retired and a fresh one started. Only plain JSON crosses the pipe: the
protocol's canonical definition (the child compiles it itself) and canonical
subject values; nothing is pickled.
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from rules.compiler import CompiledProtocol, compile_protocol
from rules.engine import DurableEngine, Evaluation, outcomes_of
from rules.errors import EngineCrashed, EngineError, EngineTimeout
from rules.protocol import from_dict

log = logging.getLogger("eligo.engine")

CHILD_MAIN = "rules.isolation:serve"


def serve(conn: Connection) -> None:
    """The child's loop: load versions, evaluate subjects, answer in JSON, until the pipe closes."""
    engine = DurableEngine()
    compiled: dict[str, CompiledProtocol] = {}
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            if request["op"] == "load":
                compiled[request["key"]] = compile_protocol(from_dict(request["protocol"]))
                engine.load(compiled[request["key"]])
                answer: dict[str, Any] = {"ok": True}
            else:
                protocol = compiled[request["key"]]
                answer = {"ok": True, "results": [_evaluate(engine, protocol, v) for v in request["subjects"]]}
        except Exception as error:  # every failure goes back to the parent, which raises it
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        conn.send_bytes(json.dumps(answer).encode())


def _evaluate(engine: DurableEngine, compiled: CompiledProtocol, values: Mapping[str, Any]) -> dict[str, Any]:
    try:
        final, fired = engine.run(compiled, values)
    except EngineError as error:
        return {"error": str(error)}
    return {"values": final, "fired": fired}


def _resolve(spec: str) -> Callable[[Connection], None]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _start(conn: Connection, spec: str) -> None:
    _resolve(spec)(conn)


class IsolatedEngine:
    """The engine behind a pipe: same `evaluate` as `DurableEngine`, plus `evaluate_many` for batches.

    Thread-safe (one call at a time per child, like the engine itself) and fork-aware:
    a process forked from one that had a child (gunicorn --preload) starts its own.
    """

    def __init__(self, timeout: float = 5.0, max_rulesets: int = 8, child_main: str = CHILD_MAIN) -> None:
        self.timeout = timeout
        self.max_rulesets = max_rulesets
        self.child_main = child_main
        self.restarts = 0
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._owner = 0
        self._loaded: set[str] = set()

    def evaluate(self, compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation:
        return self.evaluate_many(compiled, [values])[0]

    def evaluate_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Evaluation]:
        """Evaluate subjects in one round trip; the time limit grows with the batch (a hundred per `timeout`)."""
        if not subjects:
            return []
        with self._lock:
            self._ensure(compiled)
            answer = self._call(
                {"op": "evaluate", "key": compiled.content_hash, "subjects": list(subjects)},
                self.timeout * (1 + len(subjects) // 100),
            )
        evaluations = []
        for result in answer["results"]:
            if "error" in result:
                raise EngineError(result["error"])
            evaluations.append(
                Evaluation(result["values"], outcomes_of(compiled, result["fired"], result["values"]), result["fired"])
            )
        return evaluations

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._owner == os.getpid() else None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ensure(self, compiled: CompiledProtocol) -> None:
        key = compiled.content_hash
        alive = self._process is not None and self._owner == os.getpid() and self._process.is_alive()
        if alive and key not in self._loaded and len(self._loaded) >= self.max_rulesets:
            log.info("retiring the engine process after %d rulesets", len(self._loaded))
            self._stop()
            alive = False
        if not alive:
            self._spawn()
        if key not in self._loaded:
            self._call({"op": "load", "key": key, "protocol": compiled.definition.canonical()}, self.timeout + 30)
            self._loaded.add(key)

    def _spawn(self) -> None:
        if self._process is not None and self._owner == os.getpid():
            self._stop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_start, args=(child, self.child_main), name="eligo-engine", daemon=True)
        process.start()
        child.close()
        self._process, self._conn, self._owner = process, parent, os.getpid()
        self._loaded = set()

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._owner == os.getpid():
            self._process.kill()
            self._process.join(5)
        self._process, self._conn, self._loaded = None, None, set()

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self._conn is not None and self._process is not None
        try:
            self._conn.send_bytes(json.dumps(request).encode())
            if not self._conn.poll(timeout):
                pid = self._process.pid
                self._stop()
                self.restarts += 1
                log.error("engine process %s took longer than %.1f s; killed", pid, timeout)
                raise EngineTimeout(f"the engine did not answer within {timeout:g} s")
            answer = json.loads(self._conn.recv_bytes())
        except (EOFError, OSError, BrokenPipeError):
            self._process.join(1)
            code = self._process.exitcode
            self._stop()
            self.restarts += 1
            log.error("engine process crashed (exit code %s)", code)
            raise EngineCrashed(f"the engine process crashed (exit code {code})") from None
        if not answer["ok"]:
            raise EngineError(answer["error"])
        return answer
