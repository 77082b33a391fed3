"""The functions a derived variable's formula may call.

Formulas live in the database, so they cannot be code: a formula is a call to
one of these named, typed functions with variables (or numbers) as arguments.
Each parameter states the unit the function computes in; the compiler turns the
argument's canonical unit into that unit, so creatinine stored in µmol/L
reaches Cockcroft-Gault in mg/dL without the formula knowing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # number, date, code, boolean, or constant (a number written in the formula)
    unit: str | None = None
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Function:
    name: str
    parameters: tuple[Parameter, ...]
    result_type: str
    result_unit: str | None  # None: the unit of the first parameter's variable
    compute: Callable[..., float | int]
    description: str


def _cockcroft_gault(age: float, weight: float, creatinine: float, sex: str) -> float:
    clearance = (140.0 - age) * weight / (72.0 * creatinine)
    return clearance * 0.85 if sex == "female" else clearance


def _days_between(start: int, end: int) -> int:
    return end - start


def _times(value: float, factor: float) -> float:
    return value * factor


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "cockcroft_gault",
            (
                Parameter("age", "number", "years"),
                Parameter("weight", "number", "kg"),
                Parameter("creatinine", "number", "mg/dL"),
                Parameter("sex", "code", codes=("female", "male")),
            ),
            "number",
            "mL/min",
            _cockcroft_gault,
            "Creatinine clearance by Cockcroft-Gault: (140 - age) x weight / (72 x serum creatinine), x 0.85 for women",
        ),
        Function(
            "days_between",
            (Parameter("start", "date"), Parameter("end", "date")),
            "number",
            "days",
            _days_between,
            "Whole days from the first date to the second",
        ),
        Function(
            "times",
            (Parameter("value", "number"), Parameter("factor", "constant")),
            "number",
            None,
            _times,
            "A value multiplied by a constant, e.g. five half-lives",
        ),
    )
}

_CALENDAR_UNITS = {
    "day": "days",
    "days": "days",
    "d": "days",
    "week": "weeks",
    "weeks": "weeks",
    "wk": "weeks",
    "month": "months",
    "months": "months",
    "mo": "months",
    "year": "years",
    "years": "years",
    "y": "years",
    "yr": "years",
}


def calendar_unit(label: str | None) -> str | None:
    """The calendar unit a date window is written in, or None if it is not one."""
    return _CALENDAR_UNITS.get((label or "").strip().lower())


def window_start(reference: int, amount: float, unit: str) -> int:
    """The first day of `amount unit before reference`, on the calendar (3 months before 31 May is 28 Feb)."""
    day = dt.date.fromordinal(reference)
    whole = int(amount)
    if whole != amount and unit in ("months", "years"):
        raise ValueError("month and year windows must be whole numbers")
    if unit == "days":
        start = day - dt.timedelta(days=amount)
    elif unit == "weeks":
        start = day - dt.timedelta(weeks=amount)
    elif unit == "months":
        start = day - relativedelta(months=whole)
    else:
        start = day - relativedelta(years=whole)
    return start.toordinal()
