"""The cohort-aware form: which variables a cohort's criteria read, and the answers that make one moot."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import rules
from rules.compiler import CompiledProtocol
from rules.errors import SubjectInputErrors
from rules.ir import fields_of
from rules.relevance import relevance


@pytest.fixture(scope="session")
def sle(compiled: CompiledProtocol):
    return relevance(compiled, "SLE")


def test_only_the_cohorts_variables_are_asked(sle, compiled):
    assert sle.used("sle_classification_2019") and sle.used("sledai_2k")
    for other in ("ssc_antibody_positive", "mmt8", "platelets", "muscle_enzyme"):
        assert not sle.used(other)
    assert relevance(compiled, "ITP").used("platelets")
    # Read through a formula (crcl = cockcroft_gault(age, weight, creatinine, sex)) and a computed ULN.
    assert sle.used("weight") and sle.used("creatinine") and sle.used("alt")


@pytest.mark.parametrize(
    ("follow_up", "needs", "moot"),
    [
        ("last_csf_date", {"csf_received": True}, {"csf_received": False}),
        ("hbv_dna", {"hbcab_positive": True}, {"hbcab_positive": False}),
        ("serum_hcg_negative", {"sex": "female", "childbearing_potential": True}, {"sex": "male"}),
        (
            "serum_hcg_negative",
            {"sex": "female", "childbearing_potential": True},
            {"sex": "female", "childbearing_potential": False},
        ),
        ("pregnant", {"sex": "female"}, {"sex": "male"}),
        ("pregnancy_planned", {"sex": "female"}, {"sex": "male"}),
    ],
)
def test_follow_up_questions_appear_when_an_earlier_answer_makes_them_matter(sle, follow_up, needs, moot):
    assert sle.conditional(follow_up)
    assert follow_up not in sle.hidden({})  # unanswered: asked, nothing is assumed
    assert follow_up not in sle.hidden(needs)
    assert follow_up in sle.hidden(moot)


def test_unconditional_questions_are_always_asked(sle):
    for name in ("age", "sex", "anc", "alt", "hbsag_positive"):
        assert not sle.conditional(name)
        assert sle.show_when(name) is None
    assert sle.show_when("last_csf_date") == [
        [
            {"node": {"field": "anc", "op": ">=", "value": 1.0}, "kills": False, "waits": False},
            {"node": {"field": "csf_received", "op": "==", "value": True}, "kills": False, "waits": True},
        ]
    ]


def test_a_lab_value_hides_a_question_only_once_it_settles_it(sle):
    # IN-03d is `alt <= 3 x ULN unless alt_elevation_myopathy`: the question matters above 3 x ULN.
    assert sle.conditional("alt_elevation_myopathy") and not sle.conditional("alt")  # the question comes later
    assert "alt_elevation_myopathy" in sle.asked({})  # no ALT yet: asked, the answer may be needed
    assert "alt_elevation_myopathy" in sle.hidden({"alt": 120.0, "alt_uln": 40.0})
    assert "alt_elevation_myopathy" in sle.asked({"alt": 121.0, "alt_uln": 40.0})
    # IN-03b fails below 1 x10^9/L whatever the G-CSF history: not asked then.
    assert "csf_received" in sle.asked({}) and "csf_received" in sle.hidden({"anc": 0.8})
    assert sle.show_when("alt_elevation_myopathy") == [
        [{"node": {"field": "alt", "op": "<=", "other": "alt_uln", "times": 3.0}, "kills": True, "waits": False}]
    ]
    assert sle.factors["alt"]["µkat/L"] == 60.0  # the page converts by the unit typed


def test_a_list_of_what_to_collect_waits_for_the_lab_value_too(sle):
    # The form asks the myopathy question before ALT is known; a list of what to collect puts ALT first.
    waiting = sle.asked({}, wait_for_labs=True)
    assert "alt" in waiting and "alt_elevation_myopathy" not in waiting
    assert "bilag_a_count" not in waiting and "sledai_2k" in waiting  # BILAG only for a SLEDAI-2K of 6 or 7
    assert "alt_elevation_myopathy" in sle.asked({"alt": 121.0, "alt_uln": 40.0}, wait_for_labs=True)
    assert "bilag_a_count" in sle.asked({"sledai_2k": 6.0}, wait_for_labs=True)
    assert sle.asked({}, wait_for_labs=True) <= sle.asked({})


def test_a_trial_without_cohorts_reads_every_criterion(compiled):
    everything = relevance(compiled, None)
    assert everything.used("platelets") and everything.used("sledai_2k")


_FACTORS = (0.25, 0.5, 1, 2, 4)


@st.composite
def _answers(draw, compiled: CompiledProtocol, base: dict[str, Any], cohort: str) -> dict[str, Any]:
    """The cohort's eligible subject with each answer removed, flipped or (a number) scaled x 1/4 .. x 4.

    One draw per variable whatever the subject holds, so shrinking replays the same shape."""
    subject = copy.deepcopy(base)
    for variable in compiled.dictionary.variables.values():
        if variable.builtin or variable.is_derived or variable.companion_of:
            continue
        pick = draw(st.integers(0, 5))
        name = variable.name
        if pick == 0:
            subject.pop(name, None)
            for limit in ("_uln", "_lln"):
                subject.pop(name + limit, None)
        elif variable.type == "boolean":
            subject[name] = pick % 2 == 1
        elif variable.type == "code":
            subject[name] = variable.definition.codes[pick % len(variable.definition.codes)]
        elif variable.type == "number" and name in subject:
            # Move lab values across their thresholds, so numeric guards are exercised.
            factor = _FACTORS[pick - 1]
            value = subject[name]
            top = variable.definition.maximum
            if isinstance(value, dict):
                subject[name] = {**value, "value": value["value"] * factor}
            elif isinstance(value, int | float) and (top is None or value * factor <= top):
                subject[name] = value * factor
    subject["cohort"] = cohort
    return subject


def _normalized(compiled: CompiledProtocol, subject: dict[str, Any]) -> dict[str, Any]:
    try:
        return compiled.dictionary.normalize(subject).values
    except SubjectInputErrors:
        reject()  # a lab value scaled past what is plausible


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cohort=st.sampled_from(["SLE", "SSc", "IIM", "ITP"]))
def test_a_hidden_variable_never_changes_an_outcome(compiled, eligible_subjects, data, cohort):
    base = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in eligible_subjects[cohort].items()}
    subject = data.draw(_answers(compiled, base, cohort))
    found = relevance(compiled, cohort)
    hidden = found.hidden(_normalized(compiled, subject))
    # Unused variables are not asked at all: dropping them must not matter either.
    dropped = hidden | {name for name in found.order if not found.used(name)}
    trimmed = {
        k: v
        for k, v in subject.items()
        if k not in dropped and k.removesuffix("_uln").removesuffix("_lln") not in dropped
    }
    assert rules.outcomes(compiled, trimmed) == rules.outcomes(compiled, subject)


def test_a_follow_up_waits_for_its_earlier_question(sle):
    assert "last_csf_date" not in sle.asked({})
    assert "last_csf_date" not in sle.asked({"csf_received": False})
    assert "last_csf_date" in sle.asked({"csf_received": True})
    assert {"age", "sex", "anc", "csf_received"} <= sle.asked({})
    # An answer to a question that is not asked does not open its own follow-ups.
    assert "serum_hcg_negative" not in sle.asked({"sex": "male", "childbearing_potential": True})
    assert "serum_hcg_negative" in sle.asked({"sex": "female", "childbearing_potential": True})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cohort=st.sampled_from(["SLE", "SSc", "IIM", "ITP"]))
def test_what_is_not_asked_is_moot_or_waits_for_an_unanswered_question(compiled, eligible_subjects, data, cohort):
    base = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in eligible_subjects[cohort].items()}
    values = _normalized(compiled, data.draw(_answers(compiled, base, cohort)))
    found = relevance(compiled, cohort)
    asked, hidden = found.asked(values), found.hidden(values)
    assert not asked & hidden
    for name in {n for n in found.order if found.used(n)} - asked - hidden:
        waiting_on = {t for occ in found.occurrences[name] for g in occ for t in fields_of(g.node)}
        assert any(n in asked and n not in values for n in waiting_on), name
