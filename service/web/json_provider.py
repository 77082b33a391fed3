"""Flask's JSON responses through orjson: a screening's answer carries a 42 KB explanation.

Flask's `jsonify` always asks its provider for compact or indented output (`separators` or
`indent`), so overriding `dumps` alone never reached orjson for a response: `response` is
overridden too, and encodes straight to bytes. A response reads as Flask's own provider wrote
it (keys sorted, dates as HTTP dates, dataclasses as objects), only faster; `dumps` without
arguments (the test client's `json=`) stays plain orjson (ISO dates), as before.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

# In a response, dates and dataclasses go to Flask's `default`, so they read as they always did.
_RESPONSE = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_APPEND_NEWLINE
)


class FastJSONProvider(DefaultJSONProvider):
    """Encodes with orjson; anything it cannot encode goes to Flask's own provider, unchanged."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj).decode()
        except TypeError:  # a 65-bit integer, a non-string key, ...: the standard library takes it
            return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Any:  # a Response (Flask types it as werkzeug's sansio one)
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(obj, default=self.default, option=_RESPONSE)
        except TypeError:
            return super().response(*args, **kwargs)
        response_class: Any = self._app.response_class
        return response_class(body, mimetype=self.mimetype)
