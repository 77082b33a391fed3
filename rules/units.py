"""Units as labs write them, converted with pint into small precomputed conversions.

Sites report the same analyte in different units (creatinine in µmol/L or
mg/dL, counts in 10^9/L or /µL, temperature in °C or °F). Protocol writers and
screeners type the lab's notation (or its UCUM spelling: `10*9/L`, `[IU]/L`,
`mm[Hg]`, `mL/min/1.73 m2`), which pint does not read as is, so labels are
first rewritten into pint expressions, bounded so that no label can make pint
compute for long. Each (from, to) pair is reduced once to a `Conversion`
(scale and offset: affine covers multiples, temperatures and the HbA1c master
equation) and cached: pint is far too slow to call per value.

pint converts any two dimensionless units into each other (53 mmol/mol becomes
5.3 %), which for a lab value is a wrong answer, not a conversion. So ratios
carry a kind (what cancels in them: amount of substance, mass, a plain
fraction, a score) and only ratios of the same kind convert; a clinical
equation between two kinds belongs to the analyte (`conversion: hba1c`), like
creatinine's molar mass.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from functools import cache

import pint

from rules.errors import EligoError

MAX_LABEL_LENGTH = 40
MAX_POWER_OF_TEN = 24
_MAX_EXPONENT = 9
_MAX_POWERS = 4
_MAX_NESTING = 3

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_POWER_OF_TEN = re.compile(r"^[x×*]?\s*10\s*(?:\^|\*\*|\*|e)?\s*(-?\d+)\s*")
_ANNOTATION = re.compile(r"\{[^{}]*\}")  # UCUM {cells}, {copies}: words, not units
_BODY_SURFACE = re.compile(r"/\s*1\.73\s*m(?:\*\*|\^)?2")
_PER_AMOUNT = re.compile(r"/\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)")  # g/24 h, /100 mL
_TRAILING_EXPONENT = re.compile(r"(?<=[A-Za-z])(-?\d+)")  # UCUM m2, mm3, s-1
_POWER = re.compile(r"\*\*\s*(\(?\s*-?\s*[\d.]+\s*\)?)")
_BRACKETS = {  # UCUM's square-bracket units, spelt as pint knows them
    "[IU]": "IU",
    "[iU]": "IU",
    "[Hg]": "Hg",
    "[degF]": "degF",
    "[lb_av]": "lb",
    "[in_i]": "inch",
    "[ppm]": "ppm",
}
_WHOLE_LABELS = {
    "°C": "degC",
    "℃": "degC",
    "Cel": "degC",
    "°F": "degF",
    "℉": "degF",
    "ratio": "dimensionless",
    "fraction": "dimensionless",
    "1": "dimensionless",
}
_COUNTED_WORDS = ("cells", "copies", "cell", "copy")
_OWN_KIND = frozenset({"score"})  # dimensionless units that mean a thing of their own
_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:e-?\d+)?")  # numbers (and 1e9 scales) between the unit names
_UNIT_NAME = re.compile(r"[A-Za-z_]+")

# Labels a writer or a lab is likely to mean, for "did you mean" on an unknown unit.
KNOWN_LABELS = (
    "%",
    "/µL",
    "/mm3",
    "/min",
    "x10^9/L",
    "x10^12/L",
    "10*9/L",
    "cells/µL",
    "copies/mL",
    "IU/mL",
    "IU/L",
    "U/L",
    "µkat/L",
    "g/L",
    "g/dL",
    "mg/dL",
    "mg/L",
    "µg/L",
    "ng/mL",
    "pg/mL",
    "mmol/L",
    "µmol/L",
    "nmol/L",
    "pmol/L",
    "mmol/mol",
    "mEq/L",
    "mL/min",
    "mL/min/1.73 m2",
    "L/min",
    "kg",
    "g",
    "lb",
    "cm",
    "m",
    "kg/m2",
    "m2",
    "mmHg",
    "°C",
    "°F",
    "g/24 h",
    "mg/24 h",
    "s",
    "ms",
    "min",
    "hours",
    "days",
    "weeks",
    "months",
    "years",
    "points",
    "ratio",
)


class UnitError(EligoError):
    """A unit label that cannot be read, or two units that do not convert."""


class UnknownUnitError(UnitError):
    """A label pint does not know (or one too large or deep to try)."""

    def __init__(self, label: str, reason: str = "") -> None:
        self.label = label
        self.reason = reason
        self.suggestion = suggest(label) if not reason else None
        hint = f" (did you mean `{self.suggestion}`?)" if self.suggestion else ""
        super().__init__(f"unknown unit `{label}`{': ' + reason if reason else ''}{hint}")


class UnitMismatchError(UnitError):
    """Two units that do not measure the same thing, or not in a way that converts correctly."""

    def __init__(self, source: str, target: str, reason: str) -> None:
        self.source = source
        self.target = target
        self.reason = reason
        super().__init__(f"`{source}` does not convert to `{target}`: {reason}")


@dataclass(frozen=True)
class Conversion:
    """`value x scale + offset`: a multiple, a temperature, or a linear clinical equation."""

    scale: float
    offset: float = 0.0

    def __call__(self, value: float) -> float:
        return tidy(value * self.scale + self.offset)

    @property
    def proportional(self) -> bool:
        return self.offset == 0.0

    def then(self, after: Conversion) -> Conversion:
        """This conversion followed by `after`."""
        return Conversion(tidy(after.scale * self.scale), tidy(after.scale * self.offset + after.offset))

    def inverse(self) -> Conversion:
        return Conversion(tidy(1 / self.scale), tidy(-self.offset / self.scale))


IDENTITY = Conversion(1.0)


@dataclass(frozen=True)
class AnalyteConversion:
    """A clinical equation between two units of one analyte that pint cannot know."""

    name: str
    source: str
    target: str
    forward: Conversion
    description: str


ANALYTE_CONVERSIONS = {
    "hba1c": AnalyteConversion(
        "hba1c",
        "mmol/mol",
        "%",
        Conversion(0.09148, 2.152),
        "HbA1c: IFCC mmol/mol to NGSP % by the master equation NGSP = 0.09148 x IFCC + 2.152",
    ),
}


@cache
def registry() -> pint.UnitRegistry:
    """The one registry, built lazily: building it costs a few hundred milliseconds."""
    ureg: pint.UnitRegistry = pint.UnitRegistry()
    ureg.define("IU = U")
    ureg.define("score = [] = points")
    # "per 1.73 m² of body surface" (eGFR): a normalisation of its own, never an area to convert.
    ureg.define("body_surface_std = [body_surface]")
    return ureg


def _check_bounds(label: str, expression: str) -> None:
    """Refuse what would make pint work hard (`L^9^9^9` computes a power): length, powers, nesting."""
    depth = deepest = 0
    for char in expression:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    if deepest > _MAX_NESTING:
        raise UnknownUnitError(label, f"more than {_MAX_NESTING} nested parentheses")
    powers = _POWER.findall(expression)
    if len(powers) != expression.count("**") or len(powers) > _MAX_POWERS:
        raise UnknownUnitError(label, f"at most {_MAX_POWERS} powers, each a whole number")
    for power in powers:
        text = power.strip("() ").replace(" ", "")
        if not re.fullmatch(r"-?\d", text) or abs(int(text)) > _MAX_EXPONENT:
            raise UnknownUnitError(label, f"a power must be a whole number from -{_MAX_EXPONENT} to {_MAX_EXPONENT}")
    if re.search(r"\*\*\s*\(?\s*-?\s*[\d.]+\s*\)?\s*\*\*", expression):
        raise UnknownUnitError(label, "a power of a power")


def to_pint_expression(label: str) -> str:
    """Rewrite a lab or UCUM unit label (`x10^9/L`, `10*9/L`, `/µL`, `°C`, `mL/min/1.73 m2`) as pint's."""
    text = label.strip().translate(_SUPERSCRIPTS).replace("μ", "µ")
    if len(text) > MAX_LABEL_LENGTH:
        raise UnknownUnitError(label[:MAX_LABEL_LENGTH] + "…", f"longer than {MAX_LABEL_LENGTH} characters")
    if text in _WHOLE_LABELS:
        return _WHOLE_LABELS[text]
    for ucum, name in _BRACKETS.items():
        text = text.replace(ucum, name)
    text = _ANNOTATION.sub("", text).replace("°C", "degC").replace("°F", "degF")
    for word in _COUNTED_WORDS:
        text = re.sub(rf"\b{word}\b", "", text)
    text = text.replace("^", "**")
    text = _BODY_SURFACE.sub("/body_surface_std", text)
    text = _PER_AMOUNT.sub(r"/(\1*\2)", text)
    text = text.replace(" ", "")
    text = text.replace("µ", "u").replace("%", "percent")
    if re.search(r"[\[\]{}°]", text):
        raise UnknownUnitError(label)
    scale = ""
    match = _POWER_OF_TEN.match(text)
    if match:
        exponent = int(match.group(1))
        if abs(exponent) > MAX_POWER_OF_TEN:
            raise UnknownUnitError(label, f"a power of ten beyond 10^{MAX_POWER_OF_TEN}")
        scale = f"1e{exponent}*"
        text = text[match.end() :]
    text = _TRAILING_EXPONENT.sub(r"**\1", text)
    if text.startswith("/"):
        text = "1" + text
    _check_bounds(label, text)
    if text in ("", "1"):
        return scale.rstrip("*") or "dimensionless"
    return f"{scale}({text})" if scale else text


@cache
def parse(label: str) -> pint.Quantity:
    """One of `label`, as a pint quantity; raises UnknownUnitError for a label pint does not know."""
    expression = to_pint_expression(label)
    try:
        quantity = registry().parse_expression(expression)
    except Exception as error:  # pint's parser raises many types (even AssertionError on `/`): all mean unknown
        raise UnknownUnitError(label) from error
    if not isinstance(quantity, pint.Quantity):
        quantity = registry().Quantity(quantity, "dimensionless")
    if not math.isfinite(quantity.magnitude) or quantity.magnitude <= 0:
        raise UnknownUnitError(label, "a unit's size must be a positive number")
    return quantity


def _folded(label: str) -> str:
    return label.strip().lower().replace("μ", "u").replace("µ", "u").replace(" ", "")


def suggest(label: str) -> str | None:
    """The known label closest to an unknown one, for "did you mean" (case and µ/u do not count)."""
    known = {_folded(known): known for known in KNOWN_LABELS}
    matches = difflib.get_close_matches(_folded(label), list(known), n=1, cutoff=0.6)
    return known[matches[0]] if matches else None


def is_dimensionless(label: str) -> bool:
    """Whether a bare number can stand for a value in `label` (%, points, ratios)."""
    return bool(parse(label).dimensionless)


@cache
def _ratio_kind(label: str) -> tuple[str, ...]:
    """What cancels in a dimensionless unit: () for a plain fraction, ('[substance]',) for mmol/mol.

    Read from the label's unit names, not from pint's result, which has already cancelled mol/mol.
    """
    kinds: set[str] = set()
    for name in _UNIT_NAME.findall(_NUMBER.sub(" ", to_pint_expression(label))):
        if name == "dimensionless":
            continue
        try:
            dimensionality = registry().get_dimensionality(name)
        except pint.errors.PintError:  # a name pint read otherwise in context: it has no say in the kind
            continue
        if dimensionality:
            kinds.add(str(dimensionality))
        elif registry().get_name(name) in _OWN_KIND:
            kinds.add(registry().get_name(name))
    return tuple(sorted(kinds))


_KIND_WORDS = {
    (): "a plain fraction",
    ("[substance]",): "an amount of substance per amount of substance",
    ("[mass]",): "a mass per mass",
    ("[length] ** 3",): "a volume per volume",
    ("score",): "a score",
}
_DIMENSION_WORDS = {
    "[mass] / [length] ** 3": "a mass concentration",
    "[substance] / [length] ** 3": "a molar concentration",
    "1 / [length] ** 3": "a count per volume",
    "[substance] / [time] / [length] ** 3": "an activity in international or enzyme units per volume",
    "[temperature]": "a temperature",
    "[length] ** 3 / [time]": "a flow",
    "[length] ** 3 / [body_surface] / [time]": "a flow normalised to body surface area",
    "[mass] / [length] ** 2": "a mass per area (BMI)",
    "[mass] / [time]": "a mass per time",
    "[mass]": "a mass",
    "[length]": "a length",
    "[time]": "a duration",
    "1 / [time]": "a rate per time",
    "[mass] / [length] / [time] ** 2": "a pressure",
}


def _words(label: str, quantity: pint.Quantity) -> str:
    if quantity.dimensionless:
        kind = _ratio_kind(label)
        return _KIND_WORDS.get(kind, "a ratio of " + " and ".join(kind))
    dimensionality = str(quantity.dimensionality)
    return _DIMENSION_WORDS.get(dimensionality, dimensionality)


def _mismatch(source: str, target: str, a: pint.Quantity, b: pint.Quantity) -> UnitMismatchError:
    if a.dimensionless and b.dimensionless:
        known = ", ".join(sorted(ANALYTE_CONVERSIONS))
        reason = (
            f"both are ratios without dimension, but `{source}` is {_words(source, a)} "
            f"and `{target}` is {_words(target, b)}, so converting one to the other by pint would be wrong; "
            f"if the analyte has a clinical equation between them, declare it as the variable's `conversion` "
            f"(known: {known})"
        )
    elif "[body_surface]" in (str(a.dimensionality) + str(b.dimensionality)):
        normalised, plain = (source, target) if "[body_surface]" in str(a.dimensionality) else (target, source)
        reason = f"`{normalised}` is normalised to body surface area and `{plain}` is not: they are different values"
    else:
        reason = f"`{source}` is {_words(source, a)} and `{target}` is {_words(target, b)}"
    return UnitMismatchError(source, target, reason)


def _affine(source: pint.Quantity, target: pint.Quantity, through: pint.Quantity | None) -> Conversion:
    """The conversion from two points; `through` divides (or multiplies) by a molar mass on the way."""
    quantity = registry().Quantity

    def at(value: float) -> float:
        start = quantity(value * source.magnitude, source.units)
        if through is not None:
            start = start / through
        return float(start.to(target.units).magnitude) / target.magnitude

    origin = at(0.0)
    return Conversion(tidy(at(1.0) - origin), tidy(origin))


def _plain(source: str, target: str, molar_mass: str | None) -> Conversion:
    """A conversion pint knows, with ratios of different kinds and offsets through a molar mass refused."""
    if source == target:
        return IDENTITY
    a, b = parse(source), parse(target)
    if a.dimensionless and b.dimensionless and _ratio_kind(source) != _ratio_kind(target):
        raise _mismatch(source, target, a, b)
    candidates: list[pint.Quantity | None] = [None]
    if molar_mass:
        mass = parse(molar_mass)
        candidates += [mass, 1 / mass]
    for through in candidates:
        try:
            return _affine(a, b, through)
        except (pint.errors.DimensionalityError, pint.errors.OffsetUnitCalculusError):
            continue
        except (pint.errors.PintError, ArithmeticError) as error:
            raise UnitMismatchError(source, target, str(error)) from None
    raise _mismatch(source, target, a, b)


@cache
def conversion(source: str, target: str, molar_mass: str | None = None, analyte: str | None = None) -> Conversion:
    """How to turn a value in `source` into one in `target`; raises UnitError when it cannot, saying why.

    `molar_mass` (e.g. "113.12 g/mol") lets a mass concentration convert to a molar one and
    back; `analyte` names a clinical equation (ANALYTE_CONVERSIONS). Both belong to the
    analyte, never to the unit.
    """
    try:
        return _plain(source, target, molar_mass)
    except UnitMismatchError:
        equation = ANALYTE_CONVERSIONS.get(analyte or "")
        if equation is None:
            raise
        for start, end, step in (
            (equation.source, equation.target, equation.forward),
            (equation.target, equation.source, equation.forward.inverse()),
        ):
            try:
                return _plain(source, start, None).then(step).then(_plain(end, target, None))
            except UnitMismatchError:
                continue
        raise


def factor(source: str, target: str, molar_mass: str | None = None) -> float:
    """The number to multiply a value in `source` by to express it in `target` (proportional units only)."""
    found = conversion(source, target, molar_mass)
    if not found.proportional:
        raise UnitMismatchError(source, target, "the conversion has an offset (like °C to °F), not only a factor")
    return found.scale


def tidy(value: float) -> float:
    """Drop binary floating-point noise (1000 /µL must be exactly 1.0 x10^9/L at a threshold)."""
    return float(f"{value:.12g}")


def converts(source: str, target: str, molar_mass: str | None = None, analyte: str | None = None) -> bool:
    try:
        conversion(source, target, molar_mass, analyte)
    except UnitError:
        return False
    return True
