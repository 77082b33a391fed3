"""Flask's JSON responses through orjson: a screening's answer carries a 42 KB explanation.

Flask's `jsonify` always asks its provider for compact or indented output (`separators` or
`indent`), so overriding `dumps` alone never reached orjson for a response: `response` is
overridden too, and encodes straight to bytes. The output is the one Flask's own provider
gives (keys sorted, dates as HTTP dates, dataclasses as objects), only faster.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

# Dates and dataclasses go to Flask's `default`, so they read as they always did (HTTP dates).
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONProvider(DefaultJSONProvider):
    """Encodes with orjson; anything it cannot encode goes to Flask's own provider, unchanged."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs and kwargs != {"separators": (",", ":")}:
            return super().dumps(obj, **kwargs)
        try:
            return self._encode(obj).decode()
        except TypeError:  # a 65-bit integer, a non-string key, ...: the standard library takes it
            return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = self._encode(obj, orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)

    def _encode(self, obj: Any, option: int = 0) -> bytes:
        return orjson.dumps(obj, default=self.default, option=_OPTIONS | option)
