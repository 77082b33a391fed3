"""CSV cells that a spreadsheet will not run: OWASP's guidance on CSV injection.

A cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets
skip before looking) is read as a formula by Excel and LibreOffice. Such text cells get a leading
apostrophe, which spreadsheets show as text and never evaluate; numbers are written as numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def writer(buffer: TextIO) -> _Writer:
    return _Writer(csv.writer(buffer))


def dict_writer(buffer: TextIO, fieldnames: list[str]) -> _DictWriter:
    return _DictWriter(csv.DictWriter(buffer, fieldnames=fieldnames))


class _Writer:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def writerow(self, row: Iterable[Any]) -> None:
        self._inner.writerow([cell(v) for v in row])


class _DictWriter:
    def __init__(self, inner: csv.DictWriter) -> None:
        self._inner = inner

    def writeheader(self) -> None:
        self._inner.writeheader()

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._inner.writerows({k: cell(v) for k, v in row.items()} for row in rows)
