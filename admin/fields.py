"""Form fields that suit protocol writers better than raw JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wtforms import StringField, TextAreaField

from rules import coding


class CodeListField(StringField):
    """A list of short codes typed as `SLE, SSc`; empty means an empty list (for cohorts: every cohort)."""

    def _value(self) -> str:
        if isinstance(self.data, list | tuple):
            return ", ".join(str(item) for item in self.data)
        return self.data or ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = valuelist[0] if valuelist else ""
        self.data = [item.strip() for item in str(text).split(",") if item.strip()]


class CodingField(TextAreaField):
    """A variable's EHR codes typed one `system|code` a line (`http://loinc.org|718-7`), kept as [{system, code}].

    A line that is not `system|code` is kept as typed under `invalid`, for `valid_coding` to name it."""

    def _value(self) -> str:
        if isinstance(self.data, list | tuple):
            return coding.as_lines(c for c in self.data if isinstance(c, Mapping))
        return self.data or ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = valuelist[0] if valuelist else ""
        self.data = []
        self.invalid: list[str] = []
        for line in str(text).splitlines():
            if not line.strip():
                continue
            try:
                found = coding.parse_line(line)
            except ValueError as error:
                self.invalid.append(str(error))
                continue
            self.data.append({"system": found.system, "code": found.code})
