"""An engine child that faults on cue, for the fault-injection tests: age 77 crashes it, age 78 hangs it."""

from __future__ import annotations

import ctypes
import json
import time

from rules.isolation import Pipe
from rules.isolation import serve as real_serve

CRASH_AGE, HANG_AGE = 77, 78


class _Cue:
    """The pipe, as the real child loop sees it; looks at each request before passing it on."""

    def __init__(self, conn: Pipe) -> None:
        self._conn = conn

    def recv_bytes(self) -> bytes:
        message = self._conn.recv_bytes()
        ages = {subject.get("age") for subject in json.loads(message).get("subjects", [])}
        if CRASH_AGE in ages:
            ctypes.string_at(0)  # a real segfault, as a fault in the C engine would be
        if HANG_AGE in ages:
            time.sleep(3600)
        return message

    def send_bytes(self, data: bytes) -> None:
        self._conn.send_bytes(data)


def serve(conn: Pipe) -> None:
    real_serve(_Cue(conn))  # type: ignore[arg-type]
