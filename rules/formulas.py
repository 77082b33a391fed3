"""The named built-in functions a derived variable's formula may call, and calendar arithmetic.

Formulas live in the database, so they cannot be code: a formula is arithmetic
over variables (rules/formula_check.py) that may call these named, typed
functions. Each parameter states the unit the function computes in, and the
checker converts the argument's unit into it, so creatinine stored in µmol/L
reaches Cockcroft-Gault in mg/dL without the formula knowing. Each published
equation is tested against a published worked example (tests/rules/test_formulas.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # number, date, code, boolean, or constant (a number written in the formula)
    unit: str | None = None  # for numbers: the unit the function computes in (None: any, used as is)
    codes: tuple[str, ...] = ()
    default: str | bool | None = None  # an optional parameter: a variable's name (dates) or a value


@dataclass(frozen=True)
class Function:
    name: str
    parameters: tuple[Parameter, ...]
    result_type: str
    result_unit: str | None  # None: a number in the derived variable's own unit (or see keeps_unit)
    compute: Callable[..., float | int]
    description: str
    keeps_unit: bool = False  # the result is in the unit of the first argument (times)

    @property
    def signature(self) -> str:
        names = [p.name if p.default is None else f"[{p.name}]" for p in self.parameters]
        return f"{self.name}({', '.join(names)})"


def _cockcroft_gault(age: float, weight: float, creatinine: float, sex: str) -> float:
    clearance = (140.0 - age) * weight / (72.0 * creatinine)
    return clearance * 0.85 if sex == "female" else clearance


def _ckd_epi_2021(creatinine: float, age: float, sex: str) -> float:
    kappa, alpha, female = (0.7, -0.241, 1.012) if sex == "female" else (0.9, -0.302, 1.0)
    ratio = creatinine / kappa
    return 142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age * female


def _mdrd(creatinine: float, age: float, sex: str, black: bool) -> float:
    rate = 175.0 * math.pow(creatinine, -1.154) * math.pow(age, -0.203)
    return rate * (0.742 if sex == "female" else 1.0) * (1.212 if black else 1.0)


def _bmi(weight: float, height: float) -> float:
    return weight / (height / 100.0) ** 2


def _bsa_mosteller(weight: float, height: float) -> float:
    return math.sqrt(height * weight / 3600.0)


def _qtcf(qt: float, rr: float) -> float:
    return qt / math.pow(rr, 1.0 / 3.0)


def _qtcb(qt: float, rr: float) -> float:
    return qt / math.sqrt(rr)


def _corrected_calcium(calcium: float, albumin: float) -> float:
    return calcium + 0.8 * (4.0 - albumin)


def _pack_years(cigarettes_per_day: float, years: float) -> float:
    return cigarettes_per_day / 20.0 * years


def _days_between(start: int, end: int) -> int:
    return end - start


def _times(value: float, factor: float) -> float:
    return value * factor


def completed_months(start: int, end: int) -> int:
    """Whole calendar months from day `start` to day `end` (day numbers), negative when `end` is earlier.

    A month is complete on the same day of a later month; where that month has no such
    day (31 January, 29 February), on the first day of the month after (1 March), as
    UK and Hong Kong law count a 29 February birthday in a common year.
    """
    if end < start:
        return -completed_months(end, start)
    a, b = dt.date.fromordinal(start), dt.date.fromordinal(end)
    return (b.year - a.year) * 12 + b.month - a.month - (1 if b.day < a.day else 0)


def completed_years(start: int, end: int) -> int:
    """Whole years from `start` to `end`: a person is 50 on their 50th birthday (29 February: see months)."""
    if end < start:
        return -completed_years(end, start)
    a, b = dt.date.fromordinal(start), dt.date.fromordinal(end)
    return b.year - a.year - (1 if (b.month, b.day) < (a.month, a.day) else 0)


_CREATININE = Parameter("creatinine", "number", "mg/dL")
_AGE = Parameter("age", "number", "years")
_SEX = Parameter("sex", "code", codes=("female", "male"))
_WEIGHT = Parameter("weight", "number", "kg")
_HEIGHT = Parameter("height", "number", "cm")
_QT = (Parameter("qt", "number", "ms"), Parameter("rr", "number", "s"))
_DATES = (Parameter("start", "date"), Parameter("end", "date"))
_EGFR = "mL/min/1.73m^2"

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "cockcroft_gault",
            (_AGE, _WEIGHT, _CREATININE, _SEX),
            "number",
            "mL/min",
            _cockcroft_gault,
            "Creatinine clearance by Cockcroft-Gault: (140 - age) x weight / (72 x serum creatinine), x 0.85 for women",
        ),
        Function(
            "ckd_epi_2021",
            (_CREATININE, _AGE, _SEX),
            "number",
            _EGFR,
            _ckd_epi_2021,
            "eGFR by the race-free CKD-EPI 2021 creatinine equation: 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200"
            " x 0.9938^age x 1.012 for women (k 0.7 / 0.9, a -0.241 / -0.302 for women / men)",
        ),
        Function(
            "mdrd",
            (_CREATININE, _AGE, _SEX, Parameter("black", "boolean", default=False)),
            "number",
            _EGFR,
            _mdrd,
            "eGFR by the IDMS-traceable 4-variable MDRD equation: 175 x Scr^-1.154 x age^-0.203, x 0.742 for women,"
            " x 1.212 for Black subjects (the optional last argument, a yes/no variable)",
        ),
        Function("bmi", (_WEIGHT, _HEIGHT), "number", "kg/m^2", _bmi, "Body-mass index: weight / height², in kg/m²"),
        Function(
            "bsa_mosteller",
            (_WEIGHT, _HEIGHT),
            "number",
            "m^2",
            _bsa_mosteller,
            "Body-surface area by Mosteller: √(height cm x weight kg / 3600), in m²",
        ),
        Function(
            "qtcf", _QT, "number", "ms", _qtcf, "QT corrected by Fridericia: QT / RR^(1/3), RR in seconds (= 60 / HR)"
        ),
        Function("qtcb", _QT, "number", "ms", _qtcb, "QT corrected by Bazett: QT / √RR, RR in seconds (= 60 / HR)"),
        Function(
            "corrected_calcium",
            (Parameter("calcium", "number", "mg/dL"), Parameter("albumin", "number", "g/dL")),
            "number",
            "mg/dL",
            _corrected_calcium,
            "Calcium corrected for albumin (Payne): Ca mg/dL + 0.8 x (4 - albumin g/dL)",
        ),
        Function(
            "pack_years",
            (Parameter("cigarettes_per_day", "number"), Parameter("years", "number", "years")),
            "number",
            None,
            _pack_years,
            "Pack-years: cigarettes per day / 20 x years smoked",
        ),
        Function(
            "days_between", _DATES, "number", "days", _days_between, "Whole days from the first date to the second"
        ),
        Function(
            "completed_days",
            _DATES,
            "number",
            "days",
            _days_between,
            "Whole days from the first date to the second",
        ),
        Function(
            "completed_months",
            _DATES,
            "number",
            "months",
            completed_months,
            "Whole calendar months from the first date to the second",
        ),
        Function(
            "completed_years",
            _DATES,
            "number",
            "years",
            completed_years,
            "Whole years from the first date to the second (a person is 50 on their 50th birthday)",
        ),
        Function(
            "age",
            (Parameter("date_of_birth", "date"), Parameter("on", "date", default="screening_date")),
            "number",
            "years",
            completed_years,
            "Age in completed years on a date, the screening date unless another is given",
        ),
        Function(
            "times",
            (Parameter("value", "number"), Parameter("factor", "constant")),
            "number",
            None,
            _times,
            "A value multiplied by a constant, in the value's unit, e.g. five half-lives",
            keeps_unit=True,
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


def date_ordinal(raw: object) -> int | None:
    """A submitted date (ISO text, a date or a datetime) as its day number, or None if it is not one."""
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    if isinstance(raw, dt.date):
        return raw.toordinal()
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw.strip()).toordinal()
        except ValueError:
            return None
    return None


def calendar_unit(label: str | None) -> str | None:
    """The calendar unit a date window is written in, or None if it is not one."""
    return _CALENDAR_UNITS.get((label or "").strip().lower())


@functools.lru_cache(maxsize=4096)
def window_start(reference: int, amount: float, unit: str) -> int:
    """The first day of `amount unit before reference`, on the calendar (3 months before 31 May is 28 Feb).

    A negative amount counts forward, for windows `after` a date."""
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
