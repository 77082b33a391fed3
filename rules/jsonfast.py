"""JSON encoding where it is hot: orjson, with the standard library for what orjson refuses.

orjson (well kept, C, several times faster) encodes the explanation trees and the engine
messages on every decision. It refuses integers beyond 64 bits, which Python's json writes,
so those rare values fall back to the standard library instead of failing a request.
The decision record's hash does not use this: it stays on the standard library's canonical
form (service/record.py), whatever encoder stores the rows.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

loads = orjson.loads


def dumps_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a 65-bit integer, a non-str key, ...
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode()
