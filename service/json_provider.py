"""Flask's JSON responses through orjson: a screening's answer carries a 42 KB explanation."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

from rules import jsonfast


class FastJSONProvider(DefaultJSONProvider):
    """Encodes with orjson; anything it cannot encode goes to Flask's own provider, unchanged."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        try:
            return jsonfast.orjson.dumps(obj).decode()
        except TypeError:
            return super().dumps(obj, **kwargs)
