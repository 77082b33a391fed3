"""An engine child that takes a while over each replay chunk, so a test can kill a worker half-way through a run."""

from __future__ import annotations

import json
import time

from rules.isolation import Pipe
from rules.isolation import serve as real_serve

PAUSE_SECONDS = 0.15


class _Slow:
    """The pipe, as the real child loop sees it; pauses before each batch of outcomes."""

    def __init__(self, conn: Pipe) -> None:
        self._conn = conn

    def recv_bytes(self) -> bytes:
        message = self._conn.recv_bytes()
        if json.loads(message).get("op") == "outcomes":
            time.sleep(PAUSE_SECONDS)
        return message

    def send_bytes(self, data: bytes) -> None:
        self._conn.send_bytes(data)


def serve(conn: Pipe) -> None:
    real_serve(_Slow(conn))  # type: ignore[arg-type]
