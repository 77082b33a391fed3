"""Units as labs write them, converted with pint.

Sites report the same analyte in different units (creatinine in µmol/L or
mg/dL, counts in 10^9/L or /µL). Protocol writers and screeners type the lab's
notation, which pint does not read as is, so labels are first rewritten into
pint expressions. Conversions are multiplicative, so each (from, to) pair is
reduced once to a factor and cached: pint is far too slow to call per value.
"""

from __future__ import annotations

import re
from functools import cache

import pint

from rules.errors import EligoError

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_POWER_OF_TEN = re.compile(r"^[x×*]?\s*10\s*(?:\^|\*\*|\*|e)?\s*(-?\d+)\s*")
_CUBIC_MM = re.compile(r"mm(?:\^|\*\*)?3")


class UnitError(EligoError):
    """A unit label that pint cannot read, or two units that do not convert."""


@cache
def registry() -> pint.UnitRegistry:
    """The one registry, built lazily: building it costs a few hundred milliseconds."""
    ureg = pint.UnitRegistry()
    ureg.define("IU = U")
    ureg.define("score = [] = points")
    return ureg


def to_pint_expression(label: str) -> str:
    """Rewrite a lab unit label (`x10^9/L`, `/µL`, `cells/mm3`, `%`) as a pint expression."""
    text = label.strip().translate(_SUPERSCRIPTS).replace("μ", "µ")
    text = text.replace("cells", "").replace(" ", "")
    text = _CUBIC_MM.sub("mm**3", text)
    text = text.replace("µ", "u").replace("%", "percent")
    scale = ""
    match = _POWER_OF_TEN.match(text)
    if match:
        scale = f"1e{match.group(1)}*"
        text = text[match.end() :]
    if text.startswith("/"):
        text = "1" + text
    if text in ("", "1"):
        return scale.rstrip("*") or "dimensionless"
    return f"{scale}({text})" if scale else text


@cache
def parse(label: str) -> pint.Quantity:
    """One of `label`, as a pint quantity; raises UnitError for a label pint does not know."""
    try:
        quantity = registry().parse_expression(to_pint_expression(label))
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, SyntaxError) as error:
        raise UnitError(f"unknown unit {label!r}") from error
    if not isinstance(quantity, pint.Quantity):
        quantity = registry().Quantity(quantity, "dimensionless")
    return quantity


@cache
def factor(source: str, target: str, molar_mass: str | None = None) -> float:
    """The number to multiply a value in `source` by to express it in `target`.

    `molar_mass` (e.g. "113.12 g/mol") lets a mass concentration convert to a
    molar one and back; it belongs to the analyte, never to the unit.
    """
    if source == target:
        return 1.0
    ratio = parse(source) / parse(target)
    candidates = [ratio]
    if molar_mass:
        mass = parse(molar_mass)
        candidates += [ratio / mass, ratio * mass]
    for candidate in candidates:
        try:
            return tidy(float(candidate.to("dimensionless").magnitude))
        except pint.errors.DimensionalityError:
            continue
    raise UnitError(f"{source!r} does not convert to {target!r}")


def tidy(value: float) -> float:
    """Drop binary floating-point noise (1000 /µL must be exactly 1.0 x10^9/L at a threshold)."""
    return float(f"{value:.12g}")


def converts(source: str, target: str, molar_mass: str | None = None) -> bool:
    try:
        factor(source, target, molar_mass)
    except UnitError:
        return False
    return True
