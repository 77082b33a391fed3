"""Realistic generated subjects for NCT07193667: all four cohorts, eligible, failing and incomplete.

Each subject starts from a cohort's eligible test case and is varied the way
real screening data varies: lab values spread over plausible ranges in the
units sites use, some values missing, some criteria failed.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import rules

LAB_SPREAD = {
    "wbc": (2.5, 11.0, ["x10^9/L", "/µL"]),
    "anc": (0.7, 7.0, ["x10^9/L", "/µL"]),
    "hgb": (70.0, 160.0, ["g/L", "g/dL"]),
    "creatinine": (45.0, 160.0, ["µmol/L", "mg/dL"]),
    "weight": (45.0, 110.0, ["kg", "lb"]),
    "age": (16.0, 70.0, ["years"]),
}
FACTORS = {"/µL": 1000, "g/dL": 0.1, "mg/dL": 1 / 88.4016973126, "lb": 1 / 0.45359237}
OPTIONAL = [
    "sledai_2k",
    "hbsag_positive",
    "hiv_antibody_positive",
    "serum_hcg_date",
    "pt",
    "inr",
    "tbil",
    "mmt8",
    "platelets",
]


def bases() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for case in rules.seed_protocol().test_cases:
        cohort = case.subject["cohort"]
        if case.expect == "eligible" and cohort not in found:
            found[cohort] = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in case.subject.items()}
    return found


def subjects(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n subjects, about half eligible, a third failing one criterion or more, the rest incomplete."""
    rng = random.Random(seed)
    templates = bases()
    cohorts = sorted(templates)
    out = []
    for _ in range(n):
        subject = dict(templates[rng.choice(cohorts)])
        for name, (low, high, unit_choices) in LAB_SPREAD.items():
            unit = rng.choice(unit_choices)
            value = round(rng.uniform(low, high), 2) * FACTORS.get(unit, 1)
            subject[name] = {"value": round(value, 3), "unit": unit} if unit != unit_choices[0] else round(value, 2)
        roll = rng.random()
        if roll < 0.15:
            for name in rng.sample(OPTIONAL, 2):
                subject.pop(name, None)
        elif roll < 0.25:
            subject[rng.choice(["hbsag_positive", "pregnant", "cns_disorder"])] = True
        out.append(subject)
    return out
