"""Form fields that suit protocol writers better than raw JSON."""

from __future__ import annotations

from typing import Any

from wtforms import StringField


class CodeListField(StringField):
    """A list of short codes typed as `SLE, SSc`; empty means an empty list (for cohorts: every cohort)."""

    def _value(self) -> str:
        if isinstance(self.data, list | tuple):
            return ", ".join(str(item) for item in self.data)
        return self.data or ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = valuelist[0] if valuelist else ""
        self.data = [item.strip() for item in str(text).split(",") if item.strip()]
