"""Run the durable-rules engine in a child process, so that its faults stay there.

The engine is C code: a segfault would take the whole web worker down with every
request it was serving, and a hang would block it forever; neither can be caught
in-process. So each process that decides subjects talks to one child process that
holds the engine. A child that crashes or overruns its time limit is killed and
replaced; the caller gets `EngineCrashed` or `EngineTimeout` for that call alone.

The child holds at most `max_rulesets` versions: loading one more deletes the least
recently used from the engine, which frees it whole (vendor/durable-rules/PATCHES.md),
so a child lives as long as it does not crash, however many drafts are previewed.

The child is a plain `python -m rules.isolation` started with subprocess, talking
length-prefixed JSON over two pipes of its own: the protocol's canonical definition
(the child compiles it itself) and canonical subject values. Nothing is pickled, and
unlike multiprocessing's spawn the parent's main module is not imported again.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from io import FileIO
from typing import Any

from rules import jsonfast
from rules.compiler import CompiledProtocol, compile_protocol
from rules.engine import DurableEngine, Evaluation, outcomes_of
from rules.errors import EngineCrashed, EngineError, EngineTimeout, SubjectInputError, SubjectInputErrors
from rules.protocol import from_dict

log = logging.getLogger("eligo.engine")

CHILD_MAIN = "rules.isolation:serve"
_LENGTH = struct.Struct("!I")


class Pipe:
    """One end of the conversation: whole messages, each a 4-byte length and its bytes."""

    def __init__(self, reader: FileIO, writer: FileIO) -> None:
        self._reader, self._writer = reader, writer

    def send_bytes(self, data: bytes) -> None:
        view = memoryview(_LENGTH.pack(len(data)) + data)
        while view:
            written = self._writer.write(view)
            view = view[written or 0 :]

    def recv_bytes(self) -> bytes:
        header = self._read(_LENGTH.size)
        return self._read(_LENGTH.unpack(header)[0])

    def poll(self, timeout: float) -> bool:
        return bool(select.select([self._reader], [], [], timeout)[0])

    def close(self) -> None:
        for end in (self._reader, self._writer):
            with contextlib.suppress(OSError):
                end.close()

    def _read(self, size: int) -> bytes:
        """Exactly `size` bytes, read into one buffer: a batch's answer is megabytes, arriving 64 KB a read."""
        data = bytearray(size)
        view, filled = memoryview(data), 0
        while filled < size:
            count = self._reader.readinto(view[filled:])
            if not count:
                raise EOFError("the other end closed the pipe")
            filled += count
        return bytes(data)


def serve(conn: Pipe) -> None:
    """The child's loop: load versions, evaluate subjects, answer in JSON, until the pipe closes."""
    engine = DurableEngine()
    compiled: dict[str, CompiledProtocol] = {}
    while True:
        try:
            request = jsonfast.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            if request["op"] == "load":
                compiled[request["key"]] = compile_protocol(from_dict(request["protocol"]))
                engine.load(compiled[request["key"]])
                answer: dict[str, Any] = {"ok": True}
            elif request["op"] == "unload":
                dropped = compiled.pop(request["key"], None)
                answer = {"ok": True, "unloaded": dropped is not None and engine.unload(dropped)}
            elif request["op"] == "decisions":
                answer = {"ok": True, "results": _decisions(engine, compiled[request["key"]], request["subjects"])}
            elif request["op"] == "outcomes":
                answer = {"ok": True, "results": _outcomes(engine, compiled[request["key"]], request["subjects"])}
            else:
                protocol = compiled[request["key"]]
                answer = {"ok": True, "results": [_evaluate(engine, protocol, v) for v in request["subjects"]]}
        except Exception as error:  # every failure goes back to the parent, which raises it
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        conn.send_bytes(jsonfast.dumps_bytes(answer))


def _outcomes(engine: DurableEngine, compiled: CompiledProtocol, subjects: list[dict[str, Any]]) -> list[Any]:
    import rules  # the package imports this module's siblings; imported here, where the child needs it

    return [
        {"input_errors": [e.as_dict() for e in result.errors]}
        if isinstance(result, SubjectInputErrors)
        else {"decision": result[0], "outcomes": result[1]}
        for result in rules.outcomes_many(compiled, subjects, engine)
    ]


def _decisions(engine: DurableEngine, compiled: CompiledProtocol, subjects: list[dict[str, Any]]) -> list[Any]:
    """Whole decisions, for batches: the explaining and the encoding run here, on every core."""
    import rules

    results: list[Any] = []
    for subject in subjects:
        try:
            results.append(decision_payload(rules.decide(compiled, subject, engine).to_dict()))
        except SubjectInputErrors as errors:
            results.append({"input_errors": [e.as_dict() for e in errors.errors]})
        except SubjectInputError as error:
            results.append({"input_errors": [error.as_dict()]})
    return results


def decision_payload(result: Mapping[str, Any]) -> dict[str, Any]:
    """A decision ready to store without touching its explanation again: a summary, and the canonical
    JSON text (standard library, sorted keys), which is both what is stored and what the record hashes."""
    outcomes = [(c["code"], c["outcome"]) for c in result["criteria"]]
    summary = {
        "decision": result["decision"],
        "cohort": result["cohort"],
        "content_hash": result["content_hash"],
        "failed": [code for code, outcome in outcomes if outcome == "fail"],
        "unknown": [code for code, outcome in outcomes if outcome == "unknown"],
        "missing": list(result["missing"]),
    }
    canonical = json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return {"summary": summary, "canonical": canonical}


def _evaluate(engine: DurableEngine, compiled: CompiledProtocol, values: Mapping[str, Any]) -> dict[str, Any]:
    try:
        final, fired = engine.run(compiled, values)
    except EngineError as error:
        return {"error": str(error)}
    return {"values": final, "fired": fired}


def _resolve(spec: str) -> Callable[[Pipe], None]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


_engines: weakref.WeakSet[IsolatedEngine] = weakref.WeakSet()


@atexit.register
def _close_engines() -> None:
    """Stop every child at exit, rather than leave it to notice the closed pipe."""
    for engine in list(_engines):
        engine.close()


class IsolatedEngine:
    """The engine behind a pipe: same `evaluate` as `DurableEngine`, plus `evaluate_many` for batches.

    Thread-safe (one call at a time per child, like the engine itself) and fork-aware:
    a process forked from one that had a child (gunicorn --preload) starts its own.
    """

    def __init__(self, timeout: float = 5.0, max_rulesets: int = 8, child_main: str = CHILD_MAIN) -> None:
        self.timeout = timeout
        self.max_rulesets = max_rulesets
        self.child_main = child_main
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._conn: Pipe | None = None
        self._owner = 0
        self._loaded: dict[str, None] = {}  # content hashes, least recently used first
        _engines.add(self)

    def evaluate(self, compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation:
        return self.evaluate_many(compiled, [values])[0]

    def evaluate_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Evaluation]:
        """Evaluate canonical values in one round trip."""
        evaluations = []
        for result in self._batch("evaluate", compiled, subjects):
            if "error" in result:
                raise EngineError(result["error"])
            evaluations.append(
                Evaluation(result["values"], outcomes_of(compiled, result["fired"], result["values"]), result["fired"])
            )
        return evaluations

    def outcomes_many(
        self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]
    ) -> list[tuple[str, dict[str, str]] | SubjectInputErrors]:
        """Decisions and outcomes of raw subjects, normalised in the child: the replay's path."""
        return [
            SubjectInputErrors([SubjectInputError(**e) for e in result["input_errors"]])
            if "input_errors" in result
            else (result["decision"], result["outcomes"])
            for result in self._batch("outcomes", compiled, subjects)
        ]

    def decisions_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Each raw subject's `decision_payload`, or its SubjectInputErrors."""
        return [
            SubjectInputErrors([SubjectInputError(**e) for e in result["input_errors"]])
            if "input_errors" in result
            else result
            for result in self._batch("decisions", compiled, subjects)
        ]

    def _batch(self, op: str, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One round trip for many subjects; the time limit grows with the batch (a hundred per `timeout`)."""
        if not subjects:
            return []
        with self._lock:
            self._ensure(compiled)
            answer = self._call(
                {"op": op, "key": compiled.content_hash, "subjects": list(subjects)},
                self.timeout * (1 + len(subjects) // 100),
            )
        return answer["results"]

    @property
    def loaded(self) -> frozenset[str]:
        """The content hashes of the versions the current child holds."""
        return frozenset(self._loaded)

    def unload(self, compiled: CompiledProtocol) -> None:
        """Delete a version's ruleset from the child's engine (a superseded draft, say)."""
        with self._lock:
            self._unload(compiled.content_hash)

    def _unload(self, key: str) -> None:
        if key in self._loaded and self._process is not None and self._owner == os.getpid():
            self._call({"op": "unload", "key": key}, self.timeout)
        self._loaded.pop(key, None)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._owner == os.getpid() else None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ensure(self, compiled: CompiledProtocol) -> None:
        key = compiled.content_hash
        alive = self._process is not None and self._owner == os.getpid() and self._process.poll() is None
        if not alive:
            self._spawn()
        if key in self._loaded:
            self._loaded[key] = self._loaded.pop(key)  # now the most recently used
            return
        while len(self._loaded) >= max(1, self.max_rulesets):
            self._unload(next(iter(self._loaded)))
        self._call({"op": "load", "key": key, "protocol": compiled.definition.canonical()}, self.timeout + 30)
        self._loaded[key] = None

    def _spawn(self) -> None:
        if self._process is not None and self._owner == os.getpid():
            self._stop()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # The child imports what this process can import (tests point child_main at their own module).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = subprocess.Popen(
            [sys.executable, "-m", "rules.isolation", self.child_main, str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        reader = os.fdopen(from_child_r, "rb", buffering=0)
        writer = os.fdopen(to_child_w, "wb", buffering=0)
        self._process, self._conn, self._owner = process, Pipe(reader, writer), os.getpid()
        self._loaded = {}

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._owner == os.getpid():
            self._process.kill()
            self._process.wait(5)
        self._process, self._conn, self._loaded = None, None, {}

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self._conn is not None and self._process is not None
        try:
            self._conn.send_bytes(jsonfast.dumps_bytes(request))
            if not self._conn.poll(timeout):
                pid = self._process.pid
                self._stop()
                log.error("engine process %s took longer than %.1f s; killed", pid, timeout)
                raise EngineTimeout(f"the engine did not answer within {timeout:g} s")
            answer = jsonfast.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            try:
                code = self._process.wait(1)
            except subprocess.TimeoutExpired:
                code = None
            self._stop()
            log.error("engine process crashed (exit code %s)", code)
            raise EngineCrashed(f"the engine process crashed (exit code {code})") from None
        if not answer["ok"]:
            raise EngineError(answer["error"])
        return answer


class EnginePool:
    """Several engine processes deciding slices of one batch at once: a replay uses every core.

    The engine is single-threaded C; one process per core lets a long replay run in parallel
    while each slice keeps its order. Threads only wait on pipes here, so the GIL is no limit.
    """

    def __init__(self, size: int, **options: Any) -> None:
        self.engines = [IsolatedEngine(**options) for _ in range(max(1, size))]
        self._threads = ThreadPoolExecutor(len(self.engines), thread_name_prefix="eligo-engine")

    def evaluate(self, compiled: CompiledProtocol, values: Mapping[str, Any]) -> Evaluation:
        return self.engines[0].evaluate(compiled, values)

    def evaluate_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Evaluation]:
        return self._split("evaluate_many", compiled, subjects)

    def outcomes_many(
        self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]
    ) -> list[tuple[str, dict[str, str]] | SubjectInputErrors]:
        return self._split("outcomes_many", compiled, subjects)

    def decisions_many(self, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Any]:
        return self._split("decisions_many", compiled, subjects)

    def _split(self, method: str, compiled: CompiledProtocol, subjects: Sequence[Mapping[str, Any]]) -> list[Any]:
        if not subjects:
            return []
        share = -(-len(subjects) // len(self.engines))
        slices = [subjects[i : i + share] for i in range(0, len(subjects), share)]
        futures = [
            self._threads.submit(getattr(engine, method), compiled, part)
            for engine, part in zip(self.engines, slices, strict=False)
        ]
        return [result for future in futures for result in future.result()]

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


def _child(argv: list[str]) -> None:
    """`python -m rules.isolation MAIN READ_FD WRITE_FD`: what the parent starts."""
    spec, read_fd, write_fd = argv
    conn = Pipe(os.fdopen(int(read_fd), "rb", buffering=0), os.fdopen(int(write_fd), "wb", buffering=0))
    _resolve(spec)(conn)


if __name__ == "__main__":
    _child(sys.argv[1:])
